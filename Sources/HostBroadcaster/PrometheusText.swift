import Foundation

/// Builds a Prometheus text-format (0.0.4) exposition: `# HELP` and `# TYPE`
/// once per metric family, then one sample line per label set.
struct PrometheusText {
    private(set) var text = ""

    /// A family of gauges; each sample is (labels without braces, value).
    mutating func gauge(_ name: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
        family(name, "gauge", help, samples)
    }

    /// A family of counters (names end in `_total`).
    mutating func counter(_ name: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
        family(name, "counter", help, samples)
    }

    private mutating func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
        let escapedHelp = help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
        text += "# HELP \(name) \(escapedHelp)\n# TYPE \(name) \(type)\n"
        for (labels, value) in samples {
            text += labels.isEmpty ? name : "\(name){\(labels)}"
            text += " \(Self.format(value))\n"
        }
    }

    /// Integers without a fraction (what every counter is), other values as Swift prints them.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
