public import Envelope
public import HostBroadcaster
public import Logging

extension RedisPublisher {
    /// Makes a publisher for a host that will start with `initial`, and hangs
    /// it on `configuration`: a fresh seq and epoch (shared by the host and
    /// the published history), the host's backlog bounds for the history, and
    /// ``record(_:state:)`` as ``HostConfiguration/onBroadcast``.
    ///
    /// Create the host with the configuration, then call ``start()`` once the
    /// host (or its ``SessionStore``) has started, and ``stop()`` after the
    /// host stopped.
    ///
    /// ```swift
    /// var configuration = HostConfiguration()
    /// let publisher = try RedisPublisher.attach(to: &configuration, url: url, channel: channel,
    ///                                           initial: session, logger: logger)
    /// let host = HostBroadcaster(configuration: configuration, logger: logger)
    /// try host.start(initial: session)
    /// publisher.start()
    /// ```
    ///
    /// - Throws: ``RedisError`` naming the URL when Redis cannot be reached
    ///   (`configuration` is then left as it was).
    public static func attach(
        to configuration: inout HostConfiguration, url: RedisURL, channel: RedisChannel, initial: Session,
        logger: Logger, onConnectionChange: (@Sendable (Bool) -> Void)? = nil
    ) throws(RedisError) -> RedisPublisher {
        let seq = HostBroadcaster.wallClockSeq()
        let epoch = HostBroadcaster.makeEpoch()
        let publisher = try RedisPublisher(
            url: url, channel: channel, initial: initial, seq: seq, epoch: epoch,
            maxCount: configuration.maxViewerBacklogCount, maxBytes: configuration.maxViewerBacklogBytes,
            logger: logger, onConnectionChange: onConnectionChange)
        configuration.initialSeq = seq
        configuration.initialEpoch = epoch
        configuration.onBroadcast = { envelope, state in publisher.record(envelope, state: state) }
        return publisher
    }
}
