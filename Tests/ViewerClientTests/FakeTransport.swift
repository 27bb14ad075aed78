import Synchronization
@testable import ViewerClient

/// An in-memory transport: records what the driver asks for and lets the
/// test play the host's side by emitting events.
final class FakeTransport: ViewerTransport {
    struct Record {
        var handler: (@Sendable (TransportEvent) -> Void)?
        var paths: [String] = []
        var closes: [UInt16] = []
        var shutDown = false
    }

    private let record = Mutex(Record())
    /// When set, a close request is answered at once with `.closed(code: 1000)`, as a host would.
    let acknowledgesClose: Bool

    init(acknowledgesClose: Bool = true) {
        self.acknowledgesClose = acknowledgesClose
    }

    var opens: Int { record.withLock { $0.paths.count } }
    var paths: [String] { record.withLock { $0.paths } }
    var closes: [UInt16] { record.withLock { $0.closes } }
    var isShutDown: Bool { record.withLock { $0.shutDown } }

    func emit(_ event: TransportEvent) {
        let handler = record.withLock { $0.handler }
        handler?(event)
    }

    func start(handler: @escaping @Sendable (TransportEvent) -> Void) {
        record.withLock { $0.handler = handler }
    }

    func open(path: String) {
        record.withLock { $0.paths.append(path) }
    }

    func close(code: UInt16) {
        record.withLock { $0.closes.append(code) }
        if acknowledgesClose { emit(.closed(code: code)) }
    }

    func shutdown() async {
        record.withLock { $0.shutDown = true }
    }

    func requestStop() {}
}
