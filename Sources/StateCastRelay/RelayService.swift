public import HostBroadcaster
public import Logging
public import ServiceLifecycle

/// A relay as a swift-service-lifecycle `Service`: it serves until the
/// group's graceful shutdown (SIGINT/SIGTERM), then stops following Redis and
/// closes every viewer with 1001 (the relay's counterpart of ``HostService``).
///
/// ```swift
/// feed.start(serving: host)
/// let group = ServiceGroup(configuration: .init(
///     services: [RelayService(feed: feed, host: host, logger: logger)],
///     gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
/// try await group.run()
/// ```
public struct RelayService: Service {
    private let feed: RelayFeed
    private let host: HostBroadcaster
    private let logger: Logger

    /// A service that stops `feed`, then `host`, when shutdown begins.
    public init(feed: RelayFeed, host: HostBroadcaster, logger: Logger) {
        self.feed = feed
        self.host = host
        self.logger = logger
    }

    /// Waits for graceful shutdown (or cancellation), then stops the feed and the host.
    public func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down")
        feed.stop()
        host.stop()
    }
}
