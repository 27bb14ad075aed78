import Benchmark
import Debounce
import Envelope

// The work StateCast does once per message (never per viewer): encode the
// envelope, decode it on a viewer, classify a change, filter it through the
// viewer's whitelist, and submit it to the debouncer.

/// A session whose `data` encodes to about `bytes` bytes: an array of small records.
func sampleSession(dataBytes bytes: Int) -> Session {
    var items: [JSONValue] = []
    var size = 0
    var index: Int64 = 0
    while size < bytes {
        let item: JSONValue = .object([
            "id": .int(index), "label": .string("item \(index)"), "value": .double(Double(index) * 0.25), "on": .bool(index % 2 == 0),
        ])
        size += item.encoded().count + 1
        items.append(item)
        index += 1
    }
    var config: JSONObject = [:]
    for key in 0..<20 { config["field\(key)"] = .double(Double(key) / 8) }
    config["mode"] = "wave"
    config["enabled"] = true
    return Session(name: "bench", data: .object(["items": .array(items)]), config: config, metadata: ["author": "bench"])
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 10,
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )

    for (label, bytes) in [("1 KB", 1024), ("100 KB", 100 * 1024)] {
        let session = sampleSession(dataBytes: bytes)
        let envelope = Envelope(.sessionUpdate(session), seq: 42)
        let encoded = envelope.encoded()

        Benchmark("Envelope encode session_update \(label)") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(envelope.encoded()) }
        }
        Benchmark("Envelope decode session_update \(label)") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(try Envelope(decoding: encoded)) }
        }
    }

    let configEnvelope = Envelope(.configUpdate(["t": .int(1_234_567_890_123), "k": .int(42)]), seq: 43)
    let configBytes = configEnvelope.encoded()
    Benchmark("Envelope encode config_update (2 keys)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(configEnvelope.encoded()) }
    }
    Benchmark("Envelope decode config_update (2 keys)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try Envelope(decoding: configBytes)) }
    }

    // Classification: what the host runs after every debounce window.
    let big = sampleSession(dataBytes: 100 * 1024)
    var configChanged = big
    configChanged.config["field3"] = .double(99)
    Benchmark("SessionDiff config change, 100 KB data unchanged") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(SessionDiff(from: big, to: configChanged)) }
    }
    let small = sampleSession(dataBytes: 1024)
    var dataChanged = small
    dataChanged.data = sampleSession(dataBytes: 1100).data
    Benchmark("SessionDiff data change, 1 KB") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(SessionDiff(from: small, to: dataChanged)) }
    }
    var same = small
    same.config["field3"] = small.config["field3"]
    Benchmark("SessionDiff nothing changed, 1 KB") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(SessionDiff(from: small, to: same)) }
    }

    // The viewer's whitelist, derived from the last full state's config.
    let schema = FieldSchema.derived(from: small.config)
    let update: JSONObject = ["field1": 2.5, "field7": 3, "mode": "square", "enabled": false, "unknown": 1]
    Benchmark("FieldSchema.filter 5 keys (1 rejected)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(schema.filter(update)) }
    }

    // Debouncer.submit: with interval 0 it emits synchronously; with 250 ms it
    // coalesces into the pending batch and re-arms the one timer task.
    Benchmark("Debouncer submit, interval 0 (emits each)") { benchmark in
        let debouncer = Debouncer(interval: .zero, clock: ContinuousClock()) { change in blackHole(change) }
        var value: Int64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            value += 1
            debouncer.submit(.config(["speed": .int(value)]))
        }
    }
    Benchmark("Debouncer submit, interval 250 ms (coalesces)") { benchmark in
        let debouncer = Debouncer(interval: .milliseconds(250), clock: ContinuousClock()) { change in blackHole(change) }
        var value: Int64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            value += 1
            debouncer.submit(.config(["speed": .int(value)]))
        }
        benchmark.stopMeasurement()
        debouncer.cancel()
    }
}
