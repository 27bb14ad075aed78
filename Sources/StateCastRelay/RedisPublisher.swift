import StateCastSupport
import Dispatch
public import Envelope
import Foundation
public import Logging

/// Publishes a host's envelopes to Redis so that relays can serve them
/// (`statecast-host serve --redis URL --channel NAME`).
///
/// Hang ``record(_:state:)`` on ``HostConfiguration/onBroadcast``: it only
/// enqueues (it runs under the host's lock). A thread of the publisher's own
/// owns the hiredis connection and, per batch of envelopes, runs one small
/// Lua script that appends them to the history, updates the state (and the
/// base when the history was trimmed) and `PUBLISH`es each one, atomically
/// and only if Redis still holds this publisher's last write (see
/// ``RedisChannel`` for the keys, `RedisWrites` for why a script).
///
/// When Redis goes away the host keeps serving its own viewers; the
/// publisher keeps its copy of the history up to date, reconnects with
/// backoff (100 ms doubling to 2 s), and once Redis is back rewrites every
/// key and publishes the current full state, which tells relays to resync.
///
/// ```swift
/// let publisher = try RedisPublisher(url: url, channel: channel, initial: session,
///                                    seq: seq, epoch: epoch, logger: logger)   // throws if Redis is unreachable
/// configuration.initialSeq = seq
/// configuration.initialEpoch = epoch
/// configuration.onBroadcast = { envelope, state in publisher.record(envelope, state: state) }
/// ```
public final class RedisPublisher: Sendable {
    /// Where the publisher writes.
    public let url: RedisURL
    /// The channel it writes.
    public let channel: RedisChannel
    private let logger: Logger
    private let shared: Locked<Shared>
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let onConnectionChange: (@Sendable (Bool) -> Void)?

    private struct Shared: Sendable {
        var queue: [(Envelope, Session)] = []
        var stopRequested = false
        var started = false
        var connected = false
        var publishedSeq: Int64?
    }

    /// Checks that Redis answers at `url` (connect, `SELECT`, `PING`), so a
    /// wrong URL fails at start; nothing is written until ``start()``.
    ///
    /// - Parameters:
    ///   - initial, seq, epoch: the state the host starts with (give the host the same `initialSeq`/`initialEpoch`).
    ///   - maxCount, maxBytes: the history's bounds (the host's backlog bounds).
    ///   - onConnectionChange: called on the publisher's thread when Redis is reached or lost.
    /// - Throws: ``RedisError`` naming the URL when Redis cannot be reached.
    public init(
        url: RedisURL, channel: RedisChannel, initial: Session, seq: Int64, epoch: String,
        maxCount: Int = 4096, maxBytes: Int = 1 << 20, logger: Logger,
        onConnectionChange: (@Sendable (Bool) -> Void)? = nil
    ) throws(RedisError) {
        self.url = url
        self.channel = channel
        self.logger = logger
        self.onConnectionChange = onConnectionChange
        let probe = try RedisConnection(url: url, timeout: .seconds(2))
        try probe.command("PING")
        probe.close()
        shared = Locked(Shared())
        seed = PublishedHistory(initial: initial, seq: seq, epoch: epoch, maxCount: maxCount, maxBytes: maxBytes)
    }

    /// The history as of the start; the publisher thread works on its own copy.
    private let seed: PublishedHistory

    /// Starts the publisher thread, which writes the initial state at once.
    public func start() {
        let first = shared.withLock { shared -> Bool in
            guard !shared.started else { return false }
            shared.started = true
            return true
        }
        guard first else { return }
        let thread = Thread { [self] in run() }
        thread.name = "statecast-redis-publisher"
        thread.start()
    }

    /// Enqueues one broadcast envelope and the state after it. Cheap; call
    /// from ``HostConfiguration/onBroadcast``.
    public func record(_ envelope: Envelope, state: Session) {
        shared.withLock { $0.queue.append((envelope, state)) }
        wake.signal()
    }

    /// Whether the last write reached Redis.
    public var isConnected: Bool { shared.withLock { $0.connected } }

    /// The seq of the newest envelope written to Redis, if any.
    public var publishedSeq: Int64? { shared.withLock { $0.publishedSeq } }

    /// Writes what is still queued (if Redis is reachable, within about a
    /// second) and stops the thread. Safe to call more than once.
    public func stop() {
        let wasRunning = shared.withLock { shared -> Bool in
            let running = shared.started && !shared.stopRequested
            shared.stopRequested = true
            return running
        }
        guard wasRunning else { return }
        wake.signal()
        finished.wait()
    }

    // MARK: Publisher thread

    private func run() {
        var history = seed
        var connection: RedisConnection?
        var backoff = RedisBackoff()
        var nextAttempt = ContinuousClock.now
        var synced: (seq: Int64, baseSeq: Int64)?
        var reportedDown = false

        while true {
            let (batch, stopping) = shared.withLock { shared in
                defer { shared.queue.removeAll(keepingCapacity: true) }
                return (shared.queue, shared.stopRequested)
            }
            for (envelope, state) in batch { history.record(envelope, state: state) }

            if connection == nil, ContinuousClock.now >= nextAttempt {
                do {
                    connection = try RedisConnection(url: url, timeout: .seconds(1))
                    synced = nil
                } catch {
                    if !reportedDown {
                        logger.warning("cannot reach Redis at \(url); local viewers are served as usual, retrying")
                        reportedDown = true
                    }
                    nextAttempt = .now + backoff.nextDelay()
                }
            }
            if let open = connection, ContinuousClock.now >= nextAttempt {
                do throws(RedisError) {
                    var appending = false
                    var command = RedisWrites.fullRewrite(history, channel: channel)
                    if let synced, let incremental = RedisWrites.incremental(
                        history, channel: channel, syncedSeq: synced.seq, syncedBaseSeq: synced.baseSeq) {
                        command = incremental
                        appending = true
                    }
                    if !command.isEmpty, try open.command(command) == .integer(0) {
                        // The condition failed: Redis does not hold what this publisher wrote last.
                        synced = nil
                        if appending {
                            logger.debug("Redis at \(url) does not hold the last write for \(channel); rewriting it")
                        } else {
                            logger.warning("Redis at \(url) holds a newer state for \(channel) than this host; is another host publishing on it? retrying")
                            nextAttempt = .now + backoff.nextDelay()
                        }
                        if stopping { break }
                        continue
                    }
                    let wasFull = synced == nil
                    synced = (history.currentSeq, history.baseSeq)
                    backoff.reset()
                    let seq = history.currentSeq
                    let changed = shared.withLock { shared -> Bool in
                        shared.publishedSeq = seq
                        defer { shared.connected = true }
                        return !shared.connected
                    }
                    if changed {
                        if reportedDown { logger.notice("Redis at \(url) is reachable again; republished the state (seq \(seq))") }
                        reportedDown = false
                        onConnectionChange?(true)
                    } else if wasFull {
                        logger.debug("wrote the full state to \(channel) (seq \(seq))")
                    }
                } catch {
                    open.close()
                    connection = nil
                    synced = nil
                    nextAttempt = .now + backoff.nextDelay()
                    let changed = shared.withLock { shared -> Bool in
                        defer { shared.connected = false }
                        return shared.connected
                    }
                    if changed || !reportedDown {
                        logger.warning("\(error.description); local viewers are served as usual, retrying")
                        reportedDown = true
                        if changed { onConnectionChange?(false) }
                    }
                }
            }
            if stopping { break }
            let wait: Duration = nextAttempt > .now ? max(.milliseconds(10), nextAttempt - .now) : .seconds(1)
            _ = self.wake.wait(timeout: .now() + .nanoseconds(Int(wait.components.seconds) * 1_000_000_000 + Int(wait.components.attoseconds / 1_000_000_000)))
        }
        connection?.close()
        finished.signal()
    }
}
