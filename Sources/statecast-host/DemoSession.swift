import Envelope
import Foundation
import HostBroadcaster

/// The built-in session `statecast-host serve` shows when given no file:
/// a wave whose `phase` moves every second and whose `speed` changes now and then.
enum DemoSession {
    static let initial = Session(
        name: "StateCast demo",
        data: .object([
            "shape": "wave",
            "points": .array((0..<8).map { .double((sin(Double($0) * .pi / 4) * 1000).rounded() / 1000) }),
        ]),
        config: ["phase": 0.0, "speed": 1.0, "mode": "wave", "visible": true],
        metadata: ["description": "Built-in demo: phase moves every second, speed changes every 5 s."])

    static func animate(_ store: SessionStore<ContinuousClock>) async {
        var tick = 0
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(1)) } catch { return }
            tick += 1
            let phase = (Double(tick % 360) * 0.1 * 1000).rounded() / 1000
            store.setConfig("phase", .double(phase))
            if tick % 5 == 0 {
                store.setConfig("speed", .double([0.5, 1.0, 1.5, 2.0][(tick / 5) % 4]))
            }
        }
    }
}
