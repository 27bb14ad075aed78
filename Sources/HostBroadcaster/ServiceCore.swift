import CLibWebSockets
import Envelope
import Logging
import LibWebSocketsSupport
import StateCastSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Everything the service thread owns: the lws server, the viewers and the log.
///
/// Only the service thread touches the mutable state here. Other threads reach
/// it through ``HostShared`` (a Mutex) plus `lws_cancel_service`.
final class ServiceCore: @unchecked Sendable {
    // @unchecked: after `init`, every stored `var` below is read and written only
    // on the service thread (lws callbacks and timers run there); the fields
    // other threads need live in `shared` (Mutex) and `clientCount` (Atomic).
    let shared: HostShared
    let configuration: HostConfiguration
    let logger: Logger
    let heartbeat: Heartbeat
    let access: AccessPolicy
    let metrics: HostMetrics
    /// Open connections on the opt-in echo endpoint, with what they still have to echo.
    var echoes: [OpaquePointer: EchoState] = [:]
    let clientCount = Atomic<Int>(0)

    var server: UnsafeMutablePointer<statecast_server>?
    var log: MessageLog
    var viewers: [OpaquePointer] = []
    var snapshot: OutgoingMessage?
    var stopping = false
    var stopDeadline: Int64 = 0
    var reportedCount = -1
    let sweepTimer: UnsafeMutablePointer<statecast_timer>
    let pollTimer: UnsafeMutablePointer<statecast_timer>
    let stopTimer: UnsafeMutablePointer<statecast_timer>
    /// Checks SSE viewers' sockets for a departed peer (``probeEventStreams()``).
    let sseProbeTimer: UnsafeMutablePointer<statecast_timer>
    /// How often SSE sockets are checked for a peer that closed.
    static let sseProbeMicros: Int64 = 100_000
    private let pingBuffer: UnsafeMutableRawBufferPointer
    /// Scratch for ``writeBatch``: headroom plus `batchCapacity` bytes of frames.
    private let batchBuffer: UnsafeMutableRawBufferPointer
    static let batchCapacity = 16 * 1024

    init(shared: HostShared, configuration: HostConfiguration, logger: Logger, metrics: HostMetrics = HostMetrics()) {
        self.shared = shared
        self.metrics = metrics
        self.configuration = configuration
        self.logger = logger
        heartbeat = Heartbeat(configuration)
        access = AccessPolicy(token: configuration.token, allowedOrigins: configuration.allowedOrigins, maxClients: configuration.maxClients)
        log = MessageLog(maxBytes: configuration.maxViewerBacklogBytes, maxCount: configuration.maxViewerBacklogCount)
        sweepTimer = .allocate(capacity: 1)
        pollTimer = .allocate(capacity: 1)
        stopTimer = .allocate(capacity: 1)
        sseProbeTimer = .allocate(capacity: 1)
        for timer in [sweepTimer, pollTimer, stopTimer, sseProbeTimer] {
            timer.initialize(to: statecast_timer())
        }
        pingBuffer = .allocate(byteCount: OutgoingMessage.headroom + 16, alignment: 16)
        pingBuffer.initializeMemory(as: UInt8.self, repeating: 0)
        batchBuffer = .allocate(byteCount: OutgoingMessage.headroom + Self.batchCapacity, alignment: 16)
        batchBuffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        sweepTimer.deallocate()
        pollTimer.deallocate()
        stopTimer.deallocate()
        sseProbeTimer.deallocate()
        pingBuffer.deallocate()
        batchBuffer.deallocate()
    }

    // MARK: Lifecycle (service thread)

    /// Creates the lws context. Returns the listening port, or nil.
    func createServer() -> Int? {
        let unmanaged = Unmanaged.passUnretained(self).toOpaque()
        for timer in [sweepTimer, pollTimer, stopTimer, sseProbeTimer] { timer.pointee.user = unmanaged }
        let bind = configuration.bindAddress
        let ipv4Only = bind.map { $0 == "0.0.0.0" || $0.allSatisfy { $0.isNumber || $0 == "." } } ?? false
        let listenAddress = (bind == "0.0.0.0") ? nil : bind
        let created: UnsafeMutablePointer<statecast_server>? = withOptionalCString(listenAddress) { address in
          withOptionalCString(configuration.tlsCertificatePath) { certificate in
           withOptionalCString(configuration.tlsKeyPath) { key in
            var params = statecast_server_params()
            params.tls_cert_path = certificate
            params.tls_key_path = key
            params.bind_address = address
            params.port = Int32(configuration.port)
            params.ipv4_only = ipv4Only ? 1 : 0
            params.per_session_data_size = MemoryLayout<statecast_pss>.size
            // lws mallocs this per connection (rx_ubuf); viewers send next to nothing,
            // and bigger messages still arrive in pieces (docs/PERFORMANCE.md: -3.5 KiB/viewer).
            params.rx_buffer_size = 512
            // One send() may carry a whole snapshot; lws copies only what the kernel refuses.
            params.tx_packet_size = 16 << 20
            params.handshake_timeout_secs = UInt32(max(1, configuration.handshakeTimeoutSeconds))
            params.callback = hostCallback
            params.user = unmanaged
            return statecast_server_create(&params)
           }
          }
        }
        guard let created else { return nil }
        server = created
        let port = Int(statecast_server_port(created))
        scheduleSweep()
        schedulePoll()
        scheduleEventStreamProbe()
        return port
    }

    var context: OpaquePointer? { server?.pointee.context }

    /// Runs the service loop until a stop has finished closing viewers.
    func run() {
        guard let context else { return }
        while true {
            if stopping, viewers.isEmpty || monotonicMicros() >= stopDeadline { break }
            if lws_service(context, 0) < 0 { break }
        }
        statecast_timer_cancel(sweepTimer)
        statecast_timer_cancel(pollTimer)
        statecast_timer_cancel(stopTimer)
        statecast_timer_cancel(sseProbeTimer)
        shared.detachContext()
        statecast_server_destroy(server)
        server = nil
        viewers.removeAll()
        clientCount.store(0, ordering: .relaxed)
        publishCountIfChanged()
    }

    // MARK: Inbox

    /// Takes what producers queued: new broadcasts and a stop request.
    /// Returns the newest seq, which the log now holds (unless no update was ever sent).
    @discardableResult
    func drainInbox() -> Int64 {
        let (messages, stopRequested, latestSeq) = shared.takeInbox()
        for message in messages {
            if message.resetsViewers {
                log.removeAll()
                for wsi in viewers { pss(wsi)?.pointee.needs_full_state = 1 }
            }
            log.append(message)
        }
        if !messages.isEmpty { wakeViewersWithWork() }
        if stopRequested && !stopping { beginStop() }
        return latestSeq
    }

    private func wakeViewersWithWork() {
        guard let last = log.lastSeq else { return }
        for wsi in viewers {
            guard let pss = pss(wsi) else { continue }
            if pss.pointee.awaiting_write == 0, pss.pointee.closing == 0,
               pss.pointee.needs_full_state != 0 || pss.pointee.resume_pending != 0 || pss.pointee.next_seq <= last {
                requestWrite(wsi, pss)
            }
        }
    }

    private func beginStop() {
        stopping = true
        stopDeadline = monotonicMicros() + 1_000_000
        for wsi in viewers {
            guard let pss = pss(wsi) else { continue }
            pss.pointee.closing = 1
            requestWrite(wsi, pss)
        }
        if let context {
            statecast_timer_schedule(context, stopTimer, stopTimerFired, 1_000_000)
        }
    }

    // MARK: Viewers

    /// A WebSocket viewer finished its handshake, or an SSE stream started.
    func viewerEstablished(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, resumeFrom since: Int64?, epoch: String?) {
        pss.pointee.is_viewer = 1
        pss.pointee.last_heard_us = monotonicMicros()
        pss.pointee.last_write_us = pss.pointee.last_heard_us
        // Take what producers queued first, so the log is as new as the seq we compare with.
        let latestSeq = drainInbox()
        switch Resume.start(since: since, epoch: epoch, currentEpoch: shared.epoch, latestSeq: latestSeq, log: log) {
        case .fullState:
            pss.pointee.needs_full_state = 1
            metrics.fullState(since == nil ? .newcomer : .resumeMiss)
        case .after(let seq):
            pss.pointee.next_seq = seq + 1
            pss.pointee.resume_pending = 1
        }
        pss.pointee.index = UInt32(viewers.count)
        viewers.append(wsi)
        clientCount.store(viewers.count, ordering: .relaxed)
        if stopping { pss.pointee.closing = 1 }
        requestWrite(wsi, pss)
    }

    func viewerClosed(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) {
        guard pss.pointee.is_viewer != 0 else { return }
        pss.pointee.is_viewer = 0
        let index = Int(pss.pointee.index)
        guard index < viewers.count, viewers[index] == wsi else { return }
        let last = viewers.removeLast()
        if index < viewers.count {
            viewers[index] = last
            self.pss(last)?.pointee.index = UInt32(index)
        }
        clientCount.store(viewers.count, ordering: .relaxed)
    }

    /// One frame per writeable callback: close, ping (SSE: keepalive comment),
    /// the SSE preamble, a resume batch, the full state or the next update.
    func viewerWritable(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) -> Int32 {
        pss.pointee.awaiting_write = 0
        let sse = pss.pointee.is_sse != 0
        // lws already sent a Close of its own (a protocol error): no data may follow it.
        if !sse, lws_get_close_length(wsi) != 0 { return -1 }
        if pss.pointee.too_big != 0 {
            statecast_close_reason(wsi, Int32(LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE.rawValue), "message too big")
            return -1
        }
        if pss.pointee.closing != 0 {
            if !sse { statecast_close_reason(wsi, Int32(LWS_CLOSE_STATUS_GOINGAWAY.rawValue), "host stopping") }
            return -1
        }
        if sse, pss.pointee.preamble_due != 0 {
            pss.pointee.preamble_due = 0
            return writeControl(wsi, pss, Self.ssePreamble)
        }
        if pss.pointee.ping_due != 0 {
            pss.pointee.ping_due = 0
            if sse { return writeControl(wsi, pss, Self.sseKeepalive) }
            let payload = pingBuffer.baseAddress!.advanced(by: OutgoingMessage.headroom).assumingMemoryBound(to: UInt8.self)
            // One byte of payload: lws 4.1.6 never passes an empty Pong to
            // LWS_CALLBACK_RECEIVE_PONG (ops-ws.c skips it), so answers to an
            // empty Ping would go unseen and every quiet viewer would be hung up.
            if statecast_write_ping(wsi, payload, 1) < 0 { return -1 }
            if hasWork(pss) { requestWrite(wsi, pss) }
            return 0
        }
        guard let message = nextMessage(for: pss) else { return 0 }
        if !sse, let batched = writeBatch(wsi, pss, from: message) { return batched }
        let frame = sse ? message.serverSentEvent : message
        let written = sse
            ? statecast_write_http(wsi, frame.payload, frame.payloadCount)
            : statecast_write_text(wsi, frame.payload, frame.payloadCount)
        if written < frame.payloadCount { metrics.dropped(.writeFailed); return -1 }
        metrics.sent(fullState: frame.isFullState, bytes: frame.payloadCount)
        if sse { pss.pointee.last_write_us = monotonicMicros() }
        if hasWork(pss) { requestWrite(wsi, pss) }
        return 0
    }

    /// What this viewer needs next, moving its cursor past it.
    private func nextMessage(for pss: UnsafeMutablePointer<statecast_pss>) -> OutgoingMessage? {
        if pss.pointee.resume_pending != 0 {
            pss.pointee.resume_pending = 0
            switch Resume.catchUp(from: pss.pointee.next_seq, log: log) {
            case .upToDate:
                return nil
            case .configs(let changes, let seq):
                metrics.resumedFromHistory()
                pss.pointee.next_seq = seq + 1
                let epoch = shared.epoch
                let bytes = Envelope(.configUpdate(changes), seq: seq, epoch: epoch).encoded()
                return OutgoingMessage(seq: seq, epoch: epoch, isFullState: false, bytes: bytes)
            case .fullState:
                metrics.fullState(.resumeMiss)
                pss.pointee.needs_full_state = 1
            }
        }
        if pss.pointee.needs_full_state != 0 || log.position(of: pss.pointee.next_seq) == .fellBehind {
            if pss.pointee.needs_full_state == 0 { metrics.fullState(.conflated) }
            let snapshot = currentSnapshot()
            pss.pointee.needs_full_state = 0
            pss.pointee.next_seq = snapshot.seq + 1
            return snapshot
        }
        guard let next = log.message(seq: pss.pointee.next_seq) else { return nil }
        pss.pointee.next_seq += 1
        return next
    }

    /// A WebSocket viewer two or more updates behind gets them in one write: the
    /// log's ready-made frames from `first` on, gathered into `batchBuffer` (at most
    /// `batchCapacity` bytes, so what lws may have to hold for a slow viewer stays
    /// bounded). Nil: `first` is not from the log, or alone; send it the usual way.
    private func writeBatch(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, from first: OutgoingMessage) -> Int32? {
        guard let last = log.lastSeq, last > first.seq, log.message(seq: first.seq) === first else { return nil }
        let base = batchBuffer.baseAddress!.advanced(by: OutgoingMessage.headroom)
        var used = 0
        var seq = first.seq
        while seq <= last, let message = log.message(seq: seq) {
            let frame = message.frame
            if used + frame.count > Self.batchCapacity { break }
            base.advanced(by: used).copyMemory(from: frame.baseAddress!, byteCount: frame.count)
            used += frame.count
            seq += 1
        }
        guard seq - first.seq >= 2 else { return nil }
        let written = statecast_write_raw(wsi, base.assumingMemoryBound(to: UInt8.self), used)
        if written < used { metrics.dropped(.writeFailed); return -1 }
        for sent in first.seq..<seq { log.message(seq: sent).map { metrics.sent(fullState: $0.isFullState, bytes: $0.frame.count) } }
        pss.pointee.next_seq = seq
        if hasWork(pss) { requestWrite(wsi, pss) }
        return 0
    }

    private func writeControl(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, _ message: OutgoingMessage) -> Int32 {
        if statecast_write_http(wsi, message.payload, message.payloadCount) < message.payloadCount { return -1 }
        pss.pointee.last_write_us = monotonicMicros()
        if hasWork(pss) { requestWrite(wsi, pss) }
        return 0
    }

    private static let ssePreamble = OutgoingMessage(seq: 0, isFullState: false, bytes: Array("retry: 2000\n\n".utf8))
    private static let sseKeepalive = OutgoingMessage(seq: 0, isFullState: false, bytes: Array(": keepalive\n\n".utf8))

    private func hasWork(_ pss: UnsafeMutablePointer<statecast_pss>) -> Bool {
        if pss.pointee.needs_full_state != 0 || pss.pointee.ping_due != 0 || pss.pointee.closing != 0
            || pss.pointee.resume_pending != 0 || pss.pointee.preamble_due != 0 { return true }
        guard let last = log.lastSeq else { return false }
        return pss.pointee.next_seq <= last
    }

    private func requestWrite(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) {
        if pss.pointee.awaiting_write == 0 { pss.pointee.write_wanted_us = monotonicMicros() }
        pss.pointee.awaiting_write = 1
        lws_callback_on_writable(wsi)
    }

    /// The full state as of the newest seq, encoded once per seq and shared.
    private func currentSnapshot() -> OutgoingMessage {
        let (seq, session, epoch) = shared.snapshotSource()
        if let snapshot, snapshot.seq == seq, snapshot.epoch == epoch { return snapshot }
        let bytes = Envelope(.sessionUpdate(session), seq: seq, epoch: epoch).encoded()
        let message = OutgoingMessage(seq: seq, epoch: epoch, isFullState: true, bytes: bytes)
        snapshot = message
        return message
    }

    /// Incoming data: refreshes liveness; a message over the limit closes with 1009.
    func viewerReceived(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, length: Int) -> Int32 {
        pss.pointee.last_heard_us = monotonicMicros()
        pss.pointee.last_ping_us = 0
        if lws_is_first_fragment(wsi) != 0 { pss.pointee.rx_message_bytes = 0 }
        pss.pointee.rx_message_bytes += Int64(length)
        let frameRemaining = Int64(lws_remaining_packet_payload(wsi))
        if pss.pointee.too_big != 0 { return 0 }
        if exceedsIncomingLimit(received: pss.pointee.rx_message_bytes, declaredRemaining: frameRemaining) {
            logger.debug("closing a viewer that sent a message over the limit", metadata: [
                "limit": "\(configuration.maxIncomingMessageBytes)",
            ])
            // Close from the writeable callback: lws then sends the Close frame and
            // keeps reading (and discarding) until the peer answers, instead of
            // closing a socket with unread data, which the kernel turns into a
            // reset that can swallow the Close frame.
            pss.pointee.too_big = 1
            metrics.dropped(.messageTooBig)
            requestWrite(wsi, pss)
            return 0
        }
        if lws_is_final_fragment(wsi) != 0, frameRemaining == 0 { pss.pointee.rx_message_bytes = 0 }
        return 0
    }

    /// A Close frame from a viewer or an echo client, before libwebsockets answers it.
    ///
    /// lws 4.1.6 turns the codes RFC 6455 forbids below 3000 into 1002 in the
    /// payload it echoes, but echoes codes from 5000 up as they came and a
    /// 1-byte payload (no valid code at all) too. The same in-place rewrite
    /// answers codes from 5000 up with 1002; a 1-byte payload fails the
    /// connection (dropped without a Close, as lws does for a Close whose
    /// reason is not UTF-8), since lws echoes the payload's own length.
    func peerInitiatedClose(_ input: UnsafeMutableRawPointer?, length: Int) -> Int32 {
        guard length > 0, let input else { return 0 }
        guard length >= 2 else { return -1 }
        let bytes = input.assumingMemoryBound(to: UInt8.self)
        if Int(bytes[0]) << 8 | Int(bytes[1]) >= 5000 {
            let protocolError = UInt16(LWS_CLOSE_STATUS_PROTOCOL_ERR.rawValue)
            bytes[0] = UInt8(protocolError >> 8)
            bytes[1] = UInt8(protocolError & 0xFF)
        }
        return 0
    }

    func viewerPong(_ pss: UnsafeMutablePointer<statecast_pss>) {
        pss.pointee.last_heard_us = monotonicMicros()
        pss.pointee.last_ping_us = 0
    }

    // MARK: Timers

    private func scheduleSweep() {
        guard let context else { return }
        statecast_timer_schedule(context, sweepTimer, sweepTimerFired, heartbeat.sweepIntervalMicros)
    }

    private func schedulePoll() {
        guard let context else { return }
        statecast_timer_schedule(context, pollTimer, pollTimerFired, max(10_000, Heartbeat.micros(configuration.clientPollInterval)))
    }

    /// One pass over every viewer: ping the quiet ones, drop the silent ones.
    func sweep() {
        let now = monotonicMicros()
        for wsi in viewers {
            guard let pss = pss(wsi) else { continue }
            if pss.pointee.is_sse != 0 {
                // SSE clients cannot answer pings: one whose output has not drained for the
                // ping timeout is gone or stuck (lws never times SSE out, LWS-NOTES).
                let waitingSince = pss.pointee.awaiting_write != 0 ? pss.pointee.write_wanted_us : nil
                if heartbeat.sseAction(now: now, waitingSince: waitingSince) == .hangUp {
                    logger.debug("hanging up on an SSE viewer whose output stopped draining")
                    statecast_kill_async(wsi)
                    continue
                }
                // A comment keeps proxies from timing out (and gives a stuck client a write to stall on).
                if heartbeat.sseKeepaliveDue(now: now, lastWrite: pss.pointee.last_write_us), pss.pointee.ping_due == 0 {
                    pss.pointee.ping_due = 1
                    if pss.pointee.awaiting_write == 0 { requestWrite(wsi, pss) }
                }
                continue
            }
            if closeIfDeclaredTooBig(wsi, pss) { continue }
            heartbeatStep(wsi, pss, now: now)
        }
        sweepEchoes(now: now)
        scheduleSweep()
    }

    func poll() {
        publishCountIfChanged()
        schedulePoll()
    }

    private func scheduleEventStreamProbe() {
        guard let context else { return }
        statecast_timer_schedule(context, sseProbeTimer, sseProbeTimerFired, Self.sseProbeMicros)
    }

    /// Finds SSE viewers whose peer has gone, with one `poll()` over their sockets.
    ///
    /// libwebsockets never reads an HTTP connection while its request is being
    /// answered (state `DOING_TRANSACTION`, lib/roles/h1/ops-h1.c), so it saw a
    /// closed SSE client only when a write failed (with the demo idle: never),
    /// and the peer's FIN, level-triggered POLLIN, made its service loop spin
    /// meanwhile. rx flow control cannot switch POLLIN off either: on an h1
    /// connection it stops writes too. So the host looks itself, every
    /// ``sseProbeMicros``: a hang-up (`POLLRDHUP`, `POLLHUP`, `POLLERR`) or any
    /// data after the request (an SSE client sends none, lws would never read
    /// it, and it would keep the loop spinning) closes the connection.
    ///
    /// The same poll tells a slow reader from a stuck one: a viewer waiting for
    /// a write whose socket has room again (`POLLOUT`) is draining, so its
    /// stall clock (``Heartbeat/sseAction(now:waitingSince:)``) starts afresh.
    func probeEventStreams() {
        var sockets: [pollfd] = []
        var owners: [OpaquePointer] = []
        let hangUp = statecast_pollrdhup() | Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)
        for wsi in viewers {
            guard let pss = pss(wsi), pss.pointee.is_sse != 0 else { continue }
            let fd = lws_get_socket_fd(wsi)
            guard fd >= 0 else { continue }
            let events = pss.pointee.awaiting_write != 0 ? hangUp | Int16(POLLOUT) : hangUp
            sockets.append(pollfd(fd: fd, events: events, revents: 0))
            owners.append(wsi)
        }
        if !sockets.isEmpty, Glibc.poll(&sockets, nfds_t(sockets.count), 0) > 0 {
            let now = monotonicMicros()
            for (socket, wsi) in zip(sockets, owners) where socket.revents != 0 {
                if socket.revents & hangUp != 0 {
                    logger.debug("an SSE viewer closed its connection")
                    statecast_kill_async(wsi)
                } else if let pss = pss(wsi) {
                    pss.pointee.write_wanted_us = now
                }
            }
        }
        scheduleEventStreamProbe()
    }

    private func publishCountIfChanged() {
        let count = viewers.count
        guard count != reportedCount else { return }
        let first = reportedCount < 0
        reportedCount = count
        if first && count == 0 { return }
        configuration.onClientCountChange?(count)
    }

    // MARK: HTTP

    func httpRequest(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, path: String) -> Int32 {
        let pathOnly = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? path
        // Every path here is read-only: anything but GET (POST /status, POST /events …) is refused.
        if let refusal = AccessPolicy.methodRefusal(String(cString: statecast_http_method(wsi))) {
            return refuse(wsi, pss, refusal)
        }
        var status: UInt32 = 200
        var contentType = "application/json"
        let body: [UInt8]
        switch pathOnly {
        case "/events", "/events/":
            return startEventStream(wsi, pss)
        case "/status", "/status/":
            if access.isAuthorized(Self.request(wsi, isUpgrade: false)) {
                body = shared.status(clientCount: viewers.count).json.encoded()
            } else {
                body = Array(#"{"running":true}"#.utf8)
            }
        default:
            if let answer = operationsAnswer(wsi, path: pathOnly) {
                (status, contentType, body) = (answer.status, answer.contentType, answer.body)
            } else if let asset = StaticAssets.lookup(pathOnly) {
                contentType = asset.contentType
                body = asset.body
            } else {
                status = 404
                body = Array(#"{"error":"not found","paths":["/","/statecast.js","/events","/status","/metrics","/healthz","/readyz"]}"#.utf8)
            }
        }
        var head = [UInt8](repeating: 0, count: OutgoingMessage.headroom + 1024)
        let headerFailed = head.withUnsafeMutableBufferPointer { buffer -> Bool in
            let start = buffer.baseAddress!.advanced(by: OutgoingMessage.headroom)
            let end = buffer.baseAddress!.advanced(by: buffer.count)
            return statecast_http_write_headers(wsi, status, contentType, body.count, start, end) != 0
        }
        if headerFailed { return 1 }
        queueHTTPBody(wsi, pss, body)
        return 0
    }

    /// `GET /events`: a Server-Sent Events viewer. `Last-Event-ID` (header or
    /// `?lastEventId=`, `EPOCH:SEQ`, or `SEQ` with `&epoch=`) resumes like a
    /// WebSocket's `?since=&epoch=`.
    private func startEventStream(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) -> Int32 {
        if let refusal = access.check(Self.request(wsi, isUpgrade: false), clientCount: viewers.count)
            ?? capacityRefusal() {
            return refuse(wsi, pss, refusal)
        }
        let position = Resume.ssePosition(
            lastEventID: LWSRequest.header(wsi, "last-event-id:") ?? LWSRequest.queryArgument(wsi, "lastEventId="),
            epochArgument: LWSRequest.queryArgument(wsi, "epoch="))
        var head = [UInt8](repeating: 0, count: OutgoingMessage.headroom + 1024)
        let failed = head.withUnsafeMutableBufferPointer { buffer -> Bool in
            let start = buffer.baseAddress!.advanced(by: OutgoingMessage.headroom)
            let end = buffer.baseAddress!.advanced(by: buffer.count)
            return statecast_http_write_sse_headers(wsi, "*", start, end) != 0
        }
        if failed { return -1 }
        pss.pointee.is_sse = 1
        pss.pointee.preamble_due = 1
        viewerEstablished(wsi, pss, resumeFrom: position.since, epoch: position.epoch)
        return 0
    }

    func httpWritable(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) -> Int32 {
        if pss.pointee.is_sse != 0 { return viewerWritable(wsi, pss) }
        guard let storage = pss.pointee.http_body else { return 0 }
        let count = pss.pointee.http_body_len
        let written = statecast_write_http_final(wsi, storage + OutgoingMessage.headroom, count)
        freeHTTPBody(pss)
        if written < count { return -1 }
        return lws_http_transaction_completed(wsi) != 0 ? -1 : 0
    }

    func freeHTTPBody(_ pss: UnsafeMutablePointer<statecast_pss>) {
        if let storage = pss.pointee.http_body {
            storage.deallocate()
            pss.pointee.http_body = nil
            pss.pointee.http_body_len = 0
        }
    }

    // MARK: Admission

    /// `LWS_CALLBACK_HTTP_CONFIRM_UPGRADE`: refuse with a proper HTTP status
    /// before the upgrade (token, origin, capacity, RFC 6455 rules).
    func confirmUpgrade(_ wsi: OpaquePointer) -> Int32 {
        let request = Self.request(wsi, isUpgrade: true)
        // Echo connections hold memory and a socket like viewers: they count toward --max-clients.
        guard let refusal = access.check(request, clientCount: viewers.count + echoes.count) else { return 0 }
        logger.debug("refused an upgrade", metadata: ["status": "\(refusal.status)", "path": "\(Redaction.redactingToken(in: LWSRequest.uri(wsi)))"])
        writeRefusal(wsi, refusal)
        return 1
    }

    private func capacityRefusal() -> AccessPolicy.Refusal? {
        guard let max = configuration.maxClients, viewers.count + echoes.count >= max else { return nil }
        return AccessPolicy.Refusal(status: 503, reason: "Service Unavailable", headers: ["retry-after: 5"],
                                    body: "the host has as many viewers as it allows\n")
    }

    /// Answers an HTTP request (not an upgrade) with `refusal`; returns what the
    /// HTTP callback returns. HTTP/1: the hand-written head, then the connection
    /// closes. HTTP/2: the head through lws's header writer and the body from
    /// HTTP_WRITEABLE, since an HTTP/1.1 status line means nothing inside an h2
    /// stream (curl --http2 saw an empty reply).
    private func refuse(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, _ refusal: AccessPolicy.Refusal) -> Int32 {
        guard statecast_is_h2_stream(wsi) != 0 else {
            writeRefusal(wsi, refusal)
            return -1
        }
        let fields = refusal.headers.map { line -> (String, String) in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (parts[0].lowercased() + ":", parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
        }
        let body = Array(refusal.body.utf8)
        var head = [UInt8](repeating: 0, count: OutgoingMessage.headroom + 1024)
        let failed = withCStrings(fields.map(\.0)) { names in
            withCStrings(fields.map(\.1)) { values in
                head.withUnsafeMutableBufferPointer { buffer -> Bool in
                    let start = buffer.baseAddress!.advanced(by: OutgoingMessage.headroom)
                    let end = buffer.baseAddress!.advanced(by: buffer.count)
                    return statecast_http_write_refusal_headers(
                        wsi, UInt32(refusal.status), body.count, names, values, Int32(fields.count), start, end) != 0
                }
            }
        }
        if failed { return -1 }
        queueHTTPBody(wsi, pss, body)
        return 0
    }

    /// Keeps `body` for HTTP_WRITEABLE, which sends it as the end of the response.
    private func queueHTTPBody(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, _ body: [UInt8]) {
        freeHTTPBody(pss)
        let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: OutgoingMessage.headroom + body.count)
        body.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { (storage + OutgoingMessage.headroom).update(from: base, count: body.count) }
        }
        pss.pointee.http_body = storage
        pss.pointee.http_body_len = body.count
        lws_callback_on_writable(wsi)
    }

    /// A complete HTTP/1.1 response written in one go (lws's own status
    /// helper says HTTP/1.0, which strict clients reject during a handshake).
    private func writeRefusal(_ wsi: OpaquePointer, _ refusal: AccessPolicy.Refusal) {
        metrics.refused(status: refusal.status)
        var text = "HTTP/1.1 \(refusal.status) \(refusal.reason)\r\ncontent-type: text/plain\r\n"
        text += "content-length: \(refusal.body.utf8.count)\r\nconnection: close\r\n"
        for header in refusal.headers { text += header + "\r\n" }
        text += "\r\n" + refusal.body
        var bytes = [UInt8](repeating: 0, count: OutgoingMessage.headroom)
        bytes += Array(text.utf8)
        bytes.withUnsafeMutableBufferPointer { buffer in
            _ = statecast_write_http_raw(wsi, buffer.baseAddress! + OutgoingMessage.headroom, buffer.count - OutgoingMessage.headroom)
        }
    }

    static func request(_ wsi: OpaquePointer, isUpgrade: Bool) -> AccessPolicy.Request {
        AccessPolicy.Request(
            method: String(cString: statecast_http_method(wsi)),
            authorization: LWSRequest.header(wsi, statecast_header_authorization()),
            queryToken: LWSRequest.queryArgument(wsi, "token="),
            origin: LWSRequest.header(wsi, statecast_header_origin()),
            webSocketKey: LWSRequest.header(wsi, statecast_header_ws_key()),
            webSocketVersion: LWSRequest.header(wsi, statecast_header_ws_version()),
            subprotocols: LWSRequest.header(wsi, statecast_header_ws_protocol()),
            isUpgrade: isUpgrade)
    }

    // MARK: Echo (opt-in debugging endpoint)

    /// What an echo connection has read and not yet echoed back.
    ///
    /// Bounded like a viewer's backlog: past ``HostConfiguration/maxViewerBacklogBytes``
    /// of unsent echoes the host stops reading from that connection (lws rx
    /// flow control), so a client that sends without reading meets TCP
    /// backpressure instead of growing the host's memory.
    struct EchoState {
        var partial: [UInt8] = []
        var partialIsBinary = false
        var ready: [(binary: Bool, bytes: [UInt8])] = []
        var readyBytes = 0
        var paused = false
    }

    func echoEstablished(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) {
        pss.pointee.is_echo = 1
        pss.pointee.last_heard_us = monotonicMicros()
        echoes[wsi] = EchoState()
    }

    func echoReceived(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, _ input: UnsafeMutableRawPointer?, length: Int) -> Int32 {
        pss.pointee.last_heard_us = monotonicMicros()
        pss.pointee.last_ping_us = 0
        // Taken out of the dictionary so `partial` is uniquely referenced and
        // appending a fragment does not copy the whole message so far.
        guard var state = echoes.removeValue(forKey: wsi) else { return 0 }
        if lws_is_first_fragment(wsi) != 0 {
            state.partial.removeAll(keepingCapacity: true)
            state.partialIsBinary = statecast_frame_is_binary(wsi) != 0
        }
        if let input, length > 0 {
            state.partial.append(contentsOf: UnsafeRawBufferPointer(start: input, count: length))
        }
        if exceedsIncomingLimit(received: Int64(state.partial.count), declaredRemaining: Int64(lws_remaining_packet_payload(wsi))) {
            echoes[wsi] = nil
            statecast_close_reason(wsi, Int32(LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE.rawValue), "message too big")
            return -1
        }
        if lws_is_final_fragment(wsi) != 0, lws_remaining_packet_payload(wsi) == 0 {
            state.ready.append((state.partialIsBinary, state.partial))
            state.readyBytes += state.partial.count
            state.partial = []
            lws_callback_on_writable(wsi)
        }
        if !state.paused, state.readyBytes >= configuration.maxViewerBacklogBytes {
            state.paused = true
            lws_rx_flow_control(wsi, 0)
        }
        echoes[wsi] = state
        return 0
    }

    func echoWritable(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) -> Int32 {
        pss.pointee.awaiting_write = 0
        // After libwebsockets has sent a Close of its own (a protocol error its
        // parser found), 4.1.6 still offers SERVER_WRITEABLE and lws_write still
        // sends; RFC 6455 §5.5.1 allows no data frame after a Close.
        if lws_get_close_length(wsi) != 0 {
            echoes[wsi] = nil
            return 0
        }
        if pss.pointee.too_big != 0 {
            statecast_close_reason(wsi, Int32(LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE.rawValue), "message too big")
            return -1
        }
        guard var state = echoes[wsi] else { return 0 }
        if pss.pointee.ping_due != 0 {
            pss.pointee.ping_due = 0
            let payload = pingBuffer.baseAddress!.advanced(by: OutgoingMessage.headroom).assumingMemoryBound(to: UInt8.self)
            if statecast_write_ping(wsi, payload, 1) < 0 { return -1 }
            if !state.ready.isEmpty { lws_callback_on_writable(wsi) }
            return 0
        }
        guard !state.ready.isEmpty else { return 0 }
        let (binary, bytes) = state.ready.removeFirst()
        state.readyBytes -= bytes.count
        if state.paused, state.readyBytes <= configuration.maxViewerBacklogBytes / 2 {
            state.paused = false
            lws_rx_flow_control(wsi, 1)
        }
        echoes[wsi] = state
        var frame = [UInt8](repeating: 0, count: OutgoingMessage.headroom)
        frame += bytes
        let written = frame.withUnsafeMutableBufferPointer { buffer -> Int32 in
            let payload = buffer.baseAddress! + OutgoingMessage.headroom
            return binary ? statecast_write_binary(wsi, payload, bytes.count) : statecast_write_text(wsi, payload, bytes.count)
        }
        if written < bytes.count { return -1 }
        if !state.ready.isEmpty { lws_callback_on_writable(wsi) }
        return 0
    }

    /// The heartbeat and the declared-length check for echo connections (part of ``sweep()``).
    private func sweepEchoes(now: Int64) {
        for wsi in echoes.keys {
            guard let pss = pss(wsi) else { continue }
            if closeIfDeclaredTooBig(wsi, pss) { continue }
            heartbeatStep(wsi, pss, now: now)
        }
    }

    /// One WebSocket connection's heartbeat (viewer or echo): ping it when
    /// quiet, hang up when silent past the timeout.
    private func heartbeatStep(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, now: Int64) {
        let lastPing = pss.pointee.last_ping_us == 0 ? nil : pss.pointee.last_ping_us
        switch heartbeat.action(now: now, lastHeard: pss.pointee.last_heard_us, lastPing: lastPing) {
        case .none:
            break
        case .ping:
            pss.pointee.last_ping_us = now
            pss.pointee.ping_due = 1
            if pss.pointee.awaiting_write == 0 { requestWrite(wsi, pss) }
        case .hangUp:
            logger.debug("hanging up on a connection that stopped answering pings")
            metrics.dropped(.heartbeat)
            statecast_kill_async(wsi)
        }
    }

    // MARK: Declared frame lengths

    /// Whether a message of which `received` bytes arrived, and whose current
    /// frame still declares `declaredRemaining` bytes, is over the limit
    /// (without overflowing: a frame may declare up to 2^63 - 1 bytes).
    func exceedsIncomingLimit(received: Int64, declaredRemaining: Int64) -> Bool {
        let limit = Int64(configuration.maxIncomingMessageBytes)
        return received > limit || declaredRemaining > limit - received
    }

    /// A frame header declaring more than the limit gives no callback until
    /// payload arrives (lws 4.1.6 parses the header silently), so a peer that
    /// declares 1 TiB and sends nothing would hang there. The sweep asks lws
    /// for the declared length of the frame being read and closes such a
    /// connection with 1009. Returns whether it did.
    private func closeIfDeclaredTooBig(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) -> Bool {
        guard pss.pointee.is_sse == 0, pss.pointee.too_big == 0 else { return false }
        let declared = Int64(lws_remaining_packet_payload(wsi))
        guard exceedsIncomingLimit(received: pss.pointee.rx_message_bytes, declaredRemaining: declared) else { return false }
        logger.debug("closing a connection whose frame declares more than the limit", metadata: [
            "declared": "\(declared)", "limit": "\(configuration.maxIncomingMessageBytes)",
        ])
        pss.pointee.too_big = 1
        lws_callback_on_writable(wsi)
        return true
    }

    // MARK: Helpers

    @inline(__always)
    func pss(_ wsi: OpaquePointer) -> UnsafeMutablePointer<statecast_pss>? {
        lws_wsi_user(wsi)?.assumingMemoryBound(to: statecast_pss.self)
    }
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}

/// Calls `body` with C strings of `strings` (valid only during the call).
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    // NULL-terminated, so the array is never empty and always has an address.
    let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

@inline(__always)
private func core(of wsi: OpaquePointer?) -> ServiceCore? {
    guard let wsi, let context = lws_get_context(wsi), let user = lws_context_user(context) else { return nil }
    return Unmanaged<ServiceCore>.fromOpaque(user).takeUnretainedValue()
}

private func timerCore(_ timer: UnsafeMutablePointer<statecast_timer>?) -> ServiceCore? {
    guard let user = timer?.pointee.user else { return nil }
    return Unmanaged<ServiceCore>.fromOpaque(user).takeUnretainedValue()
}

private func sweepTimerFired(_ timer: UnsafeMutablePointer<statecast_timer>?) { timerCore(timer)?.sweep() }
private func pollTimerFired(_ timer: UnsafeMutablePointer<statecast_timer>?) { timerCore(timer)?.poll() }
/// Only wakes the service loop so it can see the stop deadline.
private func stopTimerFired(_ timer: UnsafeMutablePointer<statecast_timer>?) {}
private func sseProbeTimerFired(_ timer: UnsafeMutablePointer<statecast_timer>?) { timerCore(timer)?.probeEventStreams() }

/// The protocol callback: translates lws reasons into ServiceCore calls.
private func hostCallback(
    _ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?, _ length: Int
) -> Int32 {
    guard let wsi, let core = core(of: wsi) else { return 0 }
    let pss = user?.assumingMemoryBound(to: statecast_pss.self)
    switch reason {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return core.confirmUpgrade(wsi)
    case LWS_CALLBACK_ESTABLISHED:
        if let pss, let echo = core.configuration.echoPath, LWSRequest.path(wsi) == echo {
            core.echoEstablished(wsi, pss)
        } else if let pss {
            let since = LWSRequest.queryArgument(wsi, "since=").flatMap { Int64($0) }
            core.viewerEstablished(wsi, pss, resumeFrom: since, epoch: LWSRequest.queryArgument(wsi, "epoch="))
        }
        return 0
    case LWS_CALLBACK_CLOSED:
        if let pss, pss.pointee.is_echo != 0 { core.echoes[wsi] = nil }
        if let pss { core.viewerClosed(wsi, pss) }
        return 0
    case LWS_CALLBACK_SERVER_WRITEABLE:
        guard let pss else { return 0 }
        if pss.pointee.is_echo != 0 { return core.echoWritable(wsi, pss) }
        return core.viewerWritable(wsi, pss)
    case LWS_CALLBACK_RECEIVE:
        guard let pss else { return 0 }
        if pss.pointee.is_echo != 0 { return core.echoReceived(wsi, pss, input, length: length) }
        return core.viewerReceived(wsi, pss, length: length)
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if let input, length >= 2 {
            let bytes = input.assumingMemoryBound(to: UInt8.self)
            let code = Int(bytes[0]) << 8 | Int(bytes[1])
            core.logger.debug("a viewer closed the connection", metadata: ["close-code": "\(code)"])
        } else {
            core.logger.debug("a viewer closed the connection", metadata: ["close-code": "none"])
        }
        return core.peerInitiatedClose(input, length: length)
    case LWS_CALLBACK_RECEIVE_PONG:
        if let pss { core.viewerPong(pss) }
        return 0
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        core.drainInbox()
        return 0
    case LWS_CALLBACK_HTTP:
        guard let pss else { return -1 }
        let path = input.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "/"
        return core.httpRequest(wsi, pss, path: path)
    case LWS_CALLBACK_HTTP_WRITEABLE:
        guard let pss else { return 0 }
        return core.httpWritable(wsi, pss)
    case LWS_CALLBACK_CLOSED_HTTP, LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if let pss {
            core.freeHTTPBody(pss)
            if reason == LWS_CALLBACK_CLOSED_HTTP { core.viewerClosed(wsi, pss) }
        }
        return lws_callback_http_dummy(wsi, reason, user, input, length)
    default:
        return lws_callback_http_dummy(wsi, reason, user, input, length)
    }
}
