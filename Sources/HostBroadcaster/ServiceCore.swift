import CLibWebSockets
import Envelope
import Logging
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
    private let pingBuffer: UnsafeMutableRawBufferPointer
    /// Scratch for ``writeBatch``: headroom plus `batchCapacity` bytes of frames.
    private let batchBuffer: UnsafeMutableRawBufferPointer
    static let batchCapacity = 16 * 1024

    init(shared: HostShared, configuration: HostConfiguration, logger: Logger) {
        self.shared = shared
        self.configuration = configuration
        self.logger = logger
        heartbeat = Heartbeat(pingInterval: configuration.pingInterval, timeout: configuration.pingTimeout)
        log = MessageLog(maxBytes: configuration.maxViewerBacklogBytes, maxCount: configuration.maxViewerBacklogCount)
        sweepTimer = .allocate(capacity: 1)
        pollTimer = .allocate(capacity: 1)
        stopTimer = .allocate(capacity: 1)
        for timer in [sweepTimer, pollTimer, stopTimer] {
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
        pingBuffer.deallocate()
        batchBuffer.deallocate()
    }

    // MARK: Lifecycle (service thread)

    /// Creates the lws context. Returns the listening port, or nil.
    func createServer() -> Int? {
        let unmanaged = Unmanaged.passUnretained(self).toOpaque()
        for timer in [sweepTimer, pollTimer, stopTimer] { timer.pointee.user = unmanaged }
        let bind = configuration.bindAddress
        let ipv4Only = bind.map { $0 == "0.0.0.0" || $0.allSatisfy { $0.isNumber || $0 == "." } } ?? false
        let listenAddress = (bind == "0.0.0.0") ? nil : bind
        let created: UnsafeMutablePointer<statecast_server>? = withOptionalCString(listenAddress) { address in
            var params = statecast_server_params()
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
        guard let created else { return nil }
        server = created
        let port = Int(statecast_server_port(created))
        scheduleSweep()
        schedulePoll()
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
        shared.detachContext()
        statecast_server_destroy(server)
        server = nil
        viewers.removeAll()
        clientCount.store(0, ordering: .relaxed)
        publishCountIfChanged()
    }

    // MARK: Inbox

    /// Takes what producers queued: new broadcasts and a stop request.
    func drainInbox() {
        let (messages, stopRequested) = shared.takeInbox()
        for message in messages { log.append(message) }
        if !messages.isEmpty { wakeViewersWithWork() }
        if stopRequested && !stopping { beginStop() }
    }

    private func wakeViewersWithWork() {
        guard let last = log.lastSeq else { return }
        for wsi in viewers {
            guard let pss = pss(wsi) else { continue }
            if pss.pointee.awaiting_write == 0, pss.pointee.closing == 0,
               pss.pointee.needs_full_state != 0 || pss.pointee.next_seq <= last {
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

    func viewerEstablished(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) {
        pss.pointee.is_viewer = 1
        pss.pointee.needs_full_state = 1
        pss.pointee.last_heard_us = monotonicMicros()
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

    /// One frame per writeable callback: close, ping, full state or the next update.
    func viewerWritable(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) -> Int32 {
        pss.pointee.awaiting_write = 0
        if pss.pointee.closing != 0 {
            statecast_close_reason(wsi, Int32(LWS_CLOSE_STATUS_GOINGAWAY.rawValue), "host stopping")
            return -1
        }
        if pss.pointee.ping_due != 0 {
            pss.pointee.ping_due = 0
            let payload = pingBuffer.baseAddress!.advanced(by: OutgoingMessage.headroom).assumingMemoryBound(to: UInt8.self)
            if statecast_write_ping(wsi, payload, 0) < 0 { return -1 }
            if hasWork(pss) { requestWrite(wsi, pss) }
            return 0
        }
        let message: OutgoingMessage
        if pss.pointee.needs_full_state != 0 || log.position(of: pss.pointee.next_seq) == .fellBehind {
            message = currentSnapshot()
            pss.pointee.needs_full_state = 0
            pss.pointee.next_seq = message.seq + 1
        } else if let next = log.message(seq: pss.pointee.next_seq) {
            if let batched = writeBatch(wsi, pss, from: next) { return batched }
            message = next
            pss.pointee.next_seq += 1
        } else {
            return 0
        }
        let written = statecast_write_text(wsi, message.payload, message.payloadCount)
        if written < message.payloadCount { return -1 }
        if hasWork(pss) { requestWrite(wsi, pss) }
        return 0
    }

    /// A viewer two or more updates behind gets them in one write: their ready-made
    /// frames gathered into `batchBuffer` (at most `batchCapacity` bytes, so what lws
    /// may have to hold for a slow viewer stays bounded). Nil: send `first` alone.
    private func writeBatch(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>, from first: OutgoingMessage) -> Int32? {
        guard let last = log.lastSeq, last > first.seq else { return nil }
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
        if written < used { return -1 }
        pss.pointee.next_seq = seq
        if hasWork(pss) { requestWrite(wsi, pss) }
        return 0
    }

    private func hasWork(_ pss: UnsafeMutablePointer<statecast_pss>) -> Bool {
        if pss.pointee.needs_full_state != 0 || pss.pointee.ping_due != 0 || pss.pointee.closing != 0 { return true }
        guard let last = log.lastSeq else { return false }
        return pss.pointee.next_seq <= last
    }

    private func requestWrite(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) {
        pss.pointee.awaiting_write = 1
        lws_callback_on_writable(wsi)
    }

    /// The full state as of the newest seq, encoded once per seq and shared.
    private func currentSnapshot() -> OutgoingMessage {
        let (seq, session) = shared.latest()
        if let snapshot, snapshot.seq == seq { return snapshot }
        let bytes = Envelope(.sessionUpdate(session), seq: seq).encoded()
        let message = OutgoingMessage(seq: seq, isFullState: true, bytes: bytes)
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
        if pss.pointee.rx_message_bytes + frameRemaining > Int64(configuration.maxIncomingMessageBytes) {
            logger.debug("closing a viewer that sent a message over the limit", metadata: [
                "limit": "\(configuration.maxIncomingMessageBytes)",
            ])
            statecast_close_reason(wsi, Int32(LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE.rawValue), "message too big")
            return -1
        }
        if lws_is_final_fragment(wsi) != 0, frameRemaining == 0 { pss.pointee.rx_message_bytes = 0 }
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
            let lastPing = pss.pointee.last_ping_us == 0 ? nil : pss.pointee.last_ping_us
            switch heartbeat.action(now: now, lastHeard: pss.pointee.last_heard_us, lastPing: lastPing) {
            case .none:
                break
            case .ping:
                pss.pointee.last_ping_us = now
                pss.pointee.ping_due = 1
                if pss.pointee.awaiting_write == 0 { requestWrite(wsi, pss) }
            case .hangUp:
                logger.debug("hanging up on a viewer that stopped answering pings")
                statecast_kill_async(wsi)
            }
        }
        scheduleSweep()
    }

    func poll() {
        publishCountIfChanged()
        schedulePoll()
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
        let status: UInt32
        let body: [UInt8]
        switch pathOnly {
        case "/status", "/status/":
            status = 200
            body = shared.status(clientCount: viewers.count).json.encoded()
        default:
            status = 404
            body = Array(#"{"error":"not found","paths":["/status"]}"#.utf8)
        }
        var head = [UInt8](repeating: 0, count: OutgoingMessage.headroom + 1024)
        let headerFailed = head.withUnsafeMutableBufferPointer { buffer -> Bool in
            let start = buffer.baseAddress!.advanced(by: OutgoingMessage.headroom)
            let end = buffer.baseAddress!.advanced(by: buffer.count)
            return statecast_http_write_headers(wsi, status, "application/json", body.count, start, end) != 0
        }
        if headerFailed { return 1 }
        let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: OutgoingMessage.headroom + body.count)
        body.withUnsafeBufferPointer { source in
            (storage + OutgoingMessage.headroom).update(from: source.baseAddress!, count: body.count)
        }
        pss.pointee.http_body = storage
        pss.pointee.http_body_len = body.count
        lws_callback_on_writable(wsi)
        return 0
    }

    func httpWritable(_ wsi: OpaquePointer, _ pss: UnsafeMutablePointer<statecast_pss>) -> Int32 {
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

    // MARK: Helpers

    @inline(__always)
    func pss(_ wsi: OpaquePointer) -> UnsafeMutablePointer<statecast_pss>? {
        lws_wsi_user(wsi)?.assumingMemoryBound(to: statecast_pss.self)
    }
}

/// Monotonic microseconds (CLOCK_MONOTONIC).
func monotonicMicros() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
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

/// The protocol callback: translates lws reasons into ServiceCore calls.
private func hostCallback(
    _ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?, _ length: Int
) -> Int32 {
    guard let wsi, let core = core(of: wsi) else { return 0 }
    let pss = user?.assumingMemoryBound(to: statecast_pss.self)
    switch reason {
    case LWS_CALLBACK_ESTABLISHED:
        if let pss { core.viewerEstablished(wsi, pss) }
        return 0
    case LWS_CALLBACK_CLOSED:
        if let pss { core.viewerClosed(wsi, pss) }
        return 0
    case LWS_CALLBACK_SERVER_WRITEABLE:
        guard let pss else { return 0 }
        return core.viewerWritable(wsi, pss)
    case LWS_CALLBACK_RECEIVE:
        guard let pss else { return 0 }
        return core.viewerReceived(wsi, pss, length: length)
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
        if let pss { core.freeHTTPBody(pss) }
        return lws_callback_http_dummy(wsi, reason, user, input, length)
    default:
        return lws_callback_http_dummy(wsi, reason, user, input, length)
    }
}
