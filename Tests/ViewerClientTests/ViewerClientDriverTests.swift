import Clocks
import Envelope
import Logging
import Testing
@testable import ViewerClient

/// The driver (`ViewerClient`) over an in-memory transport and a manual clock:
/// reconnect timing, intentional close, 401/403, and applied changes, with no
/// socket and no real waiting.
@Suite("ViewerClient driver", .timeLimit(.minutes(1)))
struct ViewerClientDriverTests {
    let clock = TestClock()
    let transport = FakeTransport()
    let viewer: ViewerClient

    init() throws {
        var configuration = ViewerConfiguration()
        configuration.backoff.jitter = 0
        configuration.clock = clock
        configuration.randomSource = SeededRandom(seed: 9)
        viewer = try ViewerClient(
            url: ViewerURL(parsing: "ws://127.0.0.1:9876"),
            configuration: configuration,
            logger: Logger(label: "test"),
            transport: transport
        )
    }

    /// Waits for the next state from `iterator` (the suite's time limit bounds a wait that never ends).
    func next(_ iterator: inout AsyncStream<ConnectionState>.Iterator) async -> ConnectionState? {
        await iterator.next()
    }

    @Test("reconnect attempts start exactly on the schedule 2, 3, 4.5, 6.75, 10.125, 15, 15 s of the injected clock")
    func reconnectsOnTheSchedule() async {
        var states = viewer.states.makeAsyncIterator()
        #expect(await next(&states) == .disconnected)
        viewer.start()
        #expect(await next(&states) == .connecting)
        #expect(transport.opens == 1)
        transport.emit(.established)
        #expect(await next(&states) == .connected)

        transport.emit(.closed(code: 1001))
        let schedule: [Duration] = [
            .seconds(2), .seconds(3), .milliseconds(4500), .milliseconds(6750), .milliseconds(10125), .seconds(15),
            .seconds(15),
        ]
        for (index, delay) in schedule.enumerated() {
            let attempt = index + 1
            #expect(await next(&states) == .reconnecting(attempt: attempt, delay: delay))
            await clock.advance(by: delay - .milliseconds(1))
            #expect(transport.opens == attempt, "attempt \(attempt) started early")
            await clock.advance(by: .milliseconds(1))
            #expect(await next(&states) == .connecting)
            #expect(transport.opens == attempt + 1)
            transport.emit(.connectionError(reason: "refused", httpStatus: nil))
        }
        // A success resets the schedule.
        #expect(await next(&states) == .reconnecting(attempt: 8, delay: .seconds(15)))
        await clock.advance(by: .seconds(15))
        #expect(await next(&states) == .connecting)
        transport.emit(.established)
        #expect(await next(&states) == .connected)
        transport.emit(.pingTimeout)
        #expect(await next(&states) == .reconnecting(attempt: 1, delay: .seconds(2)))
        await viewer.disconnect()
    }

    @Test("disconnect() sends close 1000, stops the engine and never reconnects")
    func intentionalDisconnect() async {
        var states = viewer.states.makeAsyncIterator()
        _ = await next(&states)
        viewer.start()
        transport.emit(.established)
        await viewer.disconnect()
        #expect(transport.closes == [1000])
        #expect(transport.isShutDown)
        #expect(viewer.state == .disconnected)
        await clock.advance(by: .seconds(120))
        #expect(transport.opens == 1)
        // The stream saw the whole story and then finished.
        var seen: [ConnectionState] = []
        while let state = await next(&states) { seen.append(state) }
        #expect(seen == [.connecting, .connected, .closing, .disconnected])
    }

    @Test("disconnect() while a reconnect is pending cancels it")
    func disconnectWhileReconnecting() async {
        viewer.start()
        transport.emit(.established)
        transport.emit(.closed(code: nil))
        #expect(viewer.state == .reconnecting(attempt: 1, delay: .seconds(2)))
        await viewer.disconnect()
        await clock.advance(by: .seconds(60))
        #expect(transport.opens == 1)
        #expect(transport.closes.isEmpty)
        #expect(viewer.state == .disconnected)
    }

    @Test("disconnect() gives up waiting for the close reply after closeTimeout on the injected clock")
    func disconnectTimesOut() async throws {
        let silent = FakeTransport(acknowledgesClose: false)
        var configuration = ViewerConfiguration()
        configuration.clock = clock
        configuration.closeTimeout = .seconds(5)
        let viewer = try ViewerClient(
            url: ViewerURL(parsing: "ws://h:1"), configuration: configuration, logger: Logger(label: "test"), transport: silent
        )
        var states = viewer.states.makeAsyncIterator()
        viewer.start()
        silent.emit(.established)
        while let state = await states.next(), state != .connected {}
        let disconnecting = Task { await viewer.disconnect() }
        #expect(await states.next() == .closing)
        await clock.advance(by: .milliseconds(4999))
        #expect(!silent.isShutDown, "gave up before the close timeout")
        await clock.advance(by: .milliseconds(1))
        await disconnecting.value
        #expect(silent.closes == [1000])
        #expect(silent.isShutDown)
    }

    @Test("HTTP 401 and 403 stop the client: not authorized, no retry", arguments: [401, 403])
    func notAuthorizedStops(_ status: Int) async {
        var states = viewer.states.makeAsyncIterator()
        _ = await next(&states)
        viewer.start()
        _ = await next(&states)
        transport.emit(.connectionError(reason: "HS: ws upgrade unauthorized", httpStatus: status))
        #expect(await next(&states) == .notAuthorized(httpStatus: status))
        await clock.advance(by: .seconds(120))
        #expect(transport.opens == 1)
        #expect(ViewerError.notAuthorized(httpStatus: status).description.contains("(HTTP \(status))"))
        await viewer.disconnect()
    }

    @Test("other HTTP refusals retry on the schedule")
    func otherRefusalsRetry() async {
        viewer.start()
        transport.emit(.connectionError(reason: "HS: ws upgrade response not 101", httpStatus: 503))
        #expect(viewer.state == .reconnecting(attempt: 1, delay: .seconds(2)))
        #expect(viewer.lastProblem == "the host answered the handshake with HTTP 503")
        await viewer.disconnect()
    }

    @Test("messages are applied, streamed as changes and counted")
    func changesAreStreamed() async throws {
        var changes = viewer.changes.makeAsyncIterator()
        viewer.start()
        transport.emit(.established)
        transport.emit(.message(.text(Array(#"{"type":"config_update","payload":{"speed":2}}"#.utf8))))
        transport.emit(.message(.text(Array(#"{"type":"session_update","seq":1,"payload":{"name":"n","config":{"speed":1}}}"#.utf8))))
        transport.emit(.message(.binary(byteCount: 3)))
        transport.emit(.message(.text(Array(#"{"type":"config_update","seq":2,"payload":{"speed":2,"x":1}}"#.utf8))))

        let first = await changes.next()
        #expect(first?.type == "session_update")
        let second = await changes.next()
        #expect(second?.seq == 2)
        #expect(second?.changedKeys == ["speed"])
        #expect(viewer.session?.config == ["speed": 2])
        let counters = viewer.counters
        #expect(counters.configUpdatesBeforeState == 1)
        #expect(counters.binaryMessagesDropped == 1)
        #expect(counters.rejectedFields == 1)
        #expect(counters.messagesReceived == 4)
        await viewer.disconnect()
        #expect(await changes.next() == nil)
    }

    @Test("a reconnect asks the host to resume from the last seq and epoch")
    func reconnectResumes() async throws {
        let transport = FakeTransport()
        var configuration = ViewerConfiguration()
        configuration.clock = clock
        configuration.backoff.jitter = 0
        let viewer = try ViewerClient(
            url: ViewerURL(parsing: "ws://h:1/live?token=t"), configuration: configuration, logger: Logger(label: "t"),
            transport: transport
        )
        var states = viewer.states.makeAsyncIterator()
        _ = await states.next()
        viewer.start()
        transport.emit(.established)
        transport.emit(.message(.text(Array(
            #"{"type":"session_update","seq":41,"epoch":"00ff","payload":{"name":"n","config":{"a":1}}}"#.utf8))))
        transport.emit(.message(.text(Array(#"{"type":"config_update","seq":42,"payload":{"a":2}}"#.utf8))))
        transport.emit(.closed(code: 1001))
        while let state = await states.next(), state != .reconnecting(attempt: 1, delay: .seconds(2)) {}
        await clock.advance(by: .seconds(2))
        while let state = await states.next(), state != .connecting {}
        #expect(transport.paths == ["/live?token=t", "/live?token=t&since=42&epoch=00ff"])
        await viewer.disconnect()
    }

    @Test("with resumes off, a reconnect asks for the full state")
    func resumeCanBeTurnedOff() async throws {
        let transport = FakeTransport()
        var configuration = ViewerConfiguration()
        configuration.clock = clock
        configuration.resumes = false
        let viewer = try ViewerClient(
            url: ViewerURL(parsing: "ws://h:1"), configuration: configuration, logger: Logger(label: "t"), transport: transport
        )
        viewer.start()
        transport.emit(.established)
        transport.emit(.message(.text(Array(#"{"type":"session_update","seq":1,"epoch":"e","payload":{"name":"n"}}"#.utf8))))
        transport.emit(.closed(code: nil))
        guard case let .reconnecting(_, delay) = viewer.state else { Issue.record("\(viewer.state)"); return }
        var states = viewer.states.makeAsyncIterator()
        await clock.advance(by: delay)
        while let state = await states.next(), state != .connecting {}
        #expect(transport.paths == ["/", "/"])
        await viewer.disconnect()
    }

    @Test("a ping interval not below the timeout is refused before connecting")
    func pingPolicyValidated() {
        var configuration = ViewerConfiguration()
        configuration.pingInterval = .seconds(2)
        configuration.pingTimeout = .seconds(2)
        #expect {
            _ = try ViewerClient(
                url: ViewerURL(parsing: "ws://h:1"), configuration: configuration, logger: Logger(label: "t"), transport: FakeTransport()
            )
        } throws: { error in
            (error as? ViewerError)?.code == .invalidConfiguration
        }
    }
}
