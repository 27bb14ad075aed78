import StateCastSupport
import Dispatch
public import Envelope
public import HostBroadcaster
import Foundation
public import Logging

/// Feeds a ``HostBroadcaster`` from a Redis channel, so it serves another
/// host's state to viewers of its own (`statecast-host relay`).
///
/// A thread of the feed's own holds two hiredis connections: one
/// `SUBSCRIBE`d to `statecast:NAME`, one for reading the state. Each message
/// that carries the next seq is passed to ``HostBroadcaster/relay(_:)``;
/// older ones are ignored; a missing seq or a new epoch makes the feed read
/// the state, base and history again and relay what it missed (or the full
/// state when the history no longer reaches back) — see `RelaySync`.
///
/// When Redis goes away the relay keeps serving its last state, reports
/// `"degraded": true` in `/status`, reconnects with backoff (100 ms doubling
/// to 2 s), and resyncs by epoch and seq once Redis is back, never serving
/// an older seq after a newer one. A silent subscription is checked with a
/// `PING` after 1 s; no answer within 2 s counts as a lost connection.
///
/// ```swift
/// let feed = try RelayFeed(url: url, channel: channel, logger: logger)   // throws if Redis is unreachable
/// let start = try feed.initialState()                                     // waits for a host to publish
/// configuration.initialSeq = start.seq
/// configuration.initialEpoch = start.epoch
/// let host = HostBroadcaster(configuration: configuration, logger: logger)
/// try host.start(initial: start.session)
/// feed.start(serving: host)
/// ```
public final class RelayFeed: Sendable {
    /// Where the relay reads.
    public let url: RedisURL
    /// The channel it follows.
    public let channel: RedisChannel
    private let logger: Logger
    private let shared = Locked(Shared())
    private let finished = DispatchSemaphore(value: 0)

    private struct Shared: Sendable {
        var started = false
        var stopRequested = false
        var degraded = false
        var upstreamSeq: Int64 = 0
        var upstreamEpoch = ""
        var resyncs = 0
    }

    /// The state a relay starts serving: the oldest state Redis can rebuild
    /// exactly (the base), so that relaying the history after it fills the
    /// relay's resume log.
    public struct Start: Sendable, Equatable {
        /// The state.
        public let session: Session
        /// Its seq (give it to ``HostConfiguration/initialSeq``).
        public let seq: Int64
        /// Its epoch (give it to ``HostConfiguration/initialEpoch``).
        public let epoch: String
    }

    /// Checks that Redis answers at `url` (connect, `SELECT`, `PING`).
    ///
    /// - Throws: ``RedisError`` naming the URL when Redis cannot be reached.
    public init(url: RedisURL, channel: RedisChannel, logger: Logger) throws(RedisError) {
        self.url = url
        self.channel = channel
        self.logger = logger
        let probe = try RedisConnection(url: url, timeout: .seconds(2))
        try probe.command("PING")
        probe.close()
    }

    /// Reads the state to start from, waiting (polling every 250 ms) while
    /// no host has published on the channel yet; `onWaiting` is called once
    /// if it has to wait.
    ///
    /// - Throws: ``RedisError`` if Redis becomes unreachable or holds something that is not a StateCast state.
    public func initialState(onWaiting: () -> Void = {}) throws(RedisError) -> Start {
        let connection = try RedisConnection(url: url, timeout: .seconds(2))
        defer { connection.close() }
        var waited = false
        while true {
            if let snapshot = try RedisSnapshotReader.read(connection, channel: channel) {
                // /status names the upstream position from the first answer on, not from the first message.
                shared.withLock { shared in
                    shared.upstreamSeq = snapshot.seq
                    shared.upstreamEpoch = snapshot.epoch
                }
                let start = snapshot.chain?.base ?? snapshot.state
                guard case .sessionUpdate(let session) = start.payload else { return Self.start(from: snapshot.state) }
                return Start(session: session, seq: start.seq ?? snapshot.seq, epoch: snapshot.epoch)
            }
            if shared.withLock({ $0.stopRequested }) { throw .noState(url, channel: channel.name) }
            if !waited {
                onWaiting()
                waited = true
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
    }

    private static func start(from state: Envelope) -> Start {
        guard case .sessionUpdate(let session) = state.payload else { return Start(session: Session(name: ""), seq: 0, epoch: "") }
        return Start(session: session, seq: state.seq ?? 0, epoch: state.epoch ?? "")
    }

    /// Subscribes and relays to `host` on the feed's thread until ``stop()``.
    public func start(serving host: HostBroadcaster) {
        let first = shared.withLock { shared -> Bool in
            guard !shared.started, !shared.stopRequested else { return false }
            shared.started = true
            return true
        }
        guard first else { return }
        publishStatus(to: host)
        let thread = Thread { [self] in
            run(host)
            finished.signal()
        }
        thread.name = "statecast-relay-feed"
        thread.start()
    }

    /// Whether the relay has lost Redis (it serves its last state meanwhile).
    public var isDegraded: Bool { shared.withLock { $0.degraded } }

    /// How many times the relay read the state again (after a gap, a new epoch or a reconnect).
    public var resyncCount: Int { shared.withLock { $0.resyncs } }

    /// Stops the feed's thread (within about 250 ms) and closes its connections. Safe to call more than once.
    public func stop() {
        let wasRunning = shared.withLock { shared -> Bool in
            let running = shared.started && !shared.stopRequested
            shared.stopRequested = true
            return running
        }
        if wasRunning { finished.wait() }
    }

    // MARK: Feed thread

    private func run(_ host: HostBroadcaster) {
        var subscriber: RedisConnection?
        var reader: RedisConnection?
        var backoff = RedisBackoff()
        var nextAttempt = ContinuousClock.now
        var needsResync = true
        var lastResyncAttempt = ContinuousClock.now - .seconds(1)
        var lastTraffic = ContinuousClock.now
        var pingSentAt: ContinuousClock.Instant?
        var reportedDown = false

        while !shared.withLock({ $0.stopRequested }) {
            guard let subscription = subscriber, let state = reader else {
                let wait = nextAttempt - .now
                if wait > .zero {
                    Thread.sleep(forTimeInterval: min(0.25, Double(wait.components.seconds) + Double(wait.components.attoseconds) * 1e-18))
                    continue
                }
                do throws(RedisError) {
                    let newSubscriber = try RedisConnection(url: url, timeout: .seconds(1))
                    try newSubscriber.send(["SUBSCRIBE", channel.pubsub].bytes)
                    guard case .array(let confirmation)? = try newSubscriber.nextPush(timeout: .seconds(1)),
                          confirmation.first?.text == "subscribe"
                    else { throw .connectionLost(url, "no confirmation of SUBSCRIBE") }
                    reader = try RedisConnection(url: url, timeout: .seconds(1))
                    subscriber = newSubscriber
                    needsResync = true
                    lastResyncAttempt = .now - .seconds(1)
                    lastTraffic = .now
                    pingSentAt = nil
                } catch {
                    setDegraded(true, host: host)
                    if !reportedDown {
                        let seq = host.status.seq
                        logger.warning("\(error.description); serving the last state (seq \(seq)) and retrying")
                        reportedDown = true
                    }
                    nextAttempt = .now + backoff.nextDelay()
                }
                continue
            }

            do throws(RedisError) {
                if needsResync, ContinuousClock.now - lastResyncAttempt >= .milliseconds(250) {
                    lastResyncAttempt = .now
                    if try resync(state, host) {
                        needsResync = false
                        backoff.reset()
                        if reportedDown { logger.notice("Redis at \(url) is reachable again; resynced to seq \(host.status.seq)") }
                        reportedDown = false
                        setDegraded(false, host: host)
                    }
                }
                if let push = try subscription.nextPush(timeout: .milliseconds(needsResync ? 100 : 250)) {
                    lastTraffic = .now
                    pingSentAt = nil
                    if case .array(let parts) = push, parts.count == 3, parts[0].text == "message", let bytes = parts[2].bytes {
                        if handle(bytes, host) == .resync, try !resync(state, host) { needsResync = true }
                    }
                } else if pingSentAt == nil, ContinuousClock.now - lastTraffic >= .seconds(1) {
                    try subscription.send(["PING"].bytes)
                    pingSentAt = .now
                } else if let sent = pingSentAt, ContinuousClock.now - sent >= .seconds(2) {
                    throw .connectionLost(url, "no answer to PING for 2 s")
                }
            } catch {
                subscription.close()
                state.close()
                subscriber = nil
                reader = nil
                setDegraded(true, host: host)
                if !reportedDown {
                    logger.warning("\(error.description); serving the last state (seq \(host.status.seq)) and retrying")
                    reportedDown = true
                }
                nextAttempt = .now + backoff.nextDelay()
            }
        }
        subscriber?.close()
        reader?.close()
    }

    /// Relays one channel message, or says that a resync is needed.
    private func handle(_ bytes: [UInt8], _ host: HostBroadcaster) -> RelaySync.Step {
        guard let envelope = try? Envelope(decoding: bytes), let seq = envelope.seq else {
            logger.debug("ignored a message on \(channel) that is not an envelope with a seq")
            return .ignore
        }
        guard HostBroadcaster.acceptableSeqs.contains(seq) else {
            logger.warning("ignored a message on \(channel) with seq \(seq), outside 0…\(HostBroadcaster.acceptableSeqs.upperBound); check that only StateCast publishes there")
            return .ignore
        }
        noteUpstream(seq: seq, epoch: envelope.epoch, host: host)
        let step = RelaySync.step(for: envelope, seq: host.status.seq, epoch: host.epoch ?? "")
        guard step == .relay else { return step }
        return host.relay(envelope) == .gap ? .resync : .relay
    }

    /// Reads Redis and relays what the plan says; false when Redis holds no state yet.
    private func resync(_ connection: RedisConnection, _ host: HostBroadcaster) throws(RedisError) -> Bool {
        guard let snapshot = try RedisSnapshotReader.read(connection, channel: channel) else {
            logger.debug("Redis at \(url) holds no state for \(channel) yet; waiting for the host")
            return false
        }
        let before = host.status.seq
        let plan = RelaySync.plan(seq: before, epoch: host.epoch ?? "", snapshot: snapshot)
        shared.withLock { $0.resyncs += 1 }
        // Upstream first: /status never shows a served seq ahead of upstreamSeq.
        noteUpstream(seq: snapshot.seq, epoch: snapshot.epoch, host: host)
        for envelope in plan where host.relay(envelope) == .gap {
            host.relay(snapshot.state)
            break
        }
        if !plan.isEmpty {
            logger.debug("resynced from \(channel): \(plan.count) envelope(s), seq \(before) → \(host.status.seq)")
        }
        return true
    }

    private func noteUpstream(seq: Int64, epoch: String?, host: HostBroadcaster) {
        let changed = shared.withLock { shared -> Bool in
            var changed = false
            if let epoch, epoch != shared.upstreamEpoch {
                shared.upstreamEpoch = epoch
                shared.upstreamSeq = seq
                changed = true
            } else if seq > shared.upstreamSeq {
                shared.upstreamSeq = seq
                changed = true
            }
            return changed
        }
        if changed { publishStatus(to: host) }
    }

    private func setDegraded(_ degraded: Bool, host: HostBroadcaster) {
        let changed = shared.withLock { shared -> Bool in
            defer { shared.degraded = degraded }
            return shared.degraded != degraded
        }
        if changed { publishStatus(to: host) }
    }

    private func publishStatus(to host: HostBroadcaster) {
        let (degraded, seq, epoch, resyncs) = shared.withLock { ($0.degraded, $0.upstreamSeq, $0.upstreamEpoch, $0.resyncs) }
        host.setStatusExtras([
            "role": "relay",
            "upstream": .object(["redis": .string(url.description), "channel": .string(channel.name)]),
            "degraded": .bool(degraded),
            "upstreamSeq": .int(seq),
            "upstreamEpoch": .string(epoch),
            "resyncs": .int(Int64(resyncs)),
        ])
    }
}
