public import ServiceLifecycle

/// A running host as a swift-service-lifecycle `Service`: it serves until the
/// group's graceful shutdown (SIGINT/SIGTERM), then sends what is pending and
/// closes every viewer with 1001.
///
/// ```swift
/// try store.start()
/// let group = ServiceGroup(configuration: .init(
///     services: [HostService(store: store, host: host)],
///     gracefulShutdownSignals: [.sigint, .sigterm],
///     logger: logger))
/// try await group.run()
/// ```
public struct HostService<C: Clock>: Service where C.Duration == Duration {
    private let store: SessionStore<C>
    private let host: HostBroadcaster
    private let onShutdown: @Sendable () -> Void

    /// - Parameter onShutdown: runs first when shutdown begins (stop inputs that feed the store).
    public init(store: SessionStore<C>, host: HostBroadcaster, onShutdown: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.host = host
        self.onShutdown = onShutdown
    }

    /// Waits for graceful shutdown (or cancellation), then stops the host.
    public func run() async throws {
        try? await gracefulShutdown()
        onShutdown()
        store.flush()
        host.stop()
    }
}
