import CLibWebSockets
import Logging
import LibWebSocketsSupport
import StateCastSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The libwebsockets client behind ``ViewerClient``: one lws context and one
/// service thread per viewer, at most one connection at a time.
///
/// Threading: the service thread is the only thread that calls into
/// libwebsockets, except `lws_cancel_service` (``wake()``). Other threads
/// append a ``Command`` to `inbox` (a `Locked`, see its note on TSan) and wake the loop; the
/// service thread drains the inbox on `LWS_CALLBACK_EVENT_WAIT_CANCELLED`.
/// Everything under "service thread only" below is touched by that thread
/// alone (or by `init`/`deinit`, when no service thread runs), which is what
/// makes the `@unchecked Sendable` conformance sound.
final class LWSTransport: ViewerTransport, @unchecked Sendable {
    private enum Command: Sendable {
        case open(ViewerURL, path: String)
        case close(UInt16)
    }

    private struct Inbox: Sendable {
        var commands: [Command] = []
        var handler: (@Sendable (TransportEvent) -> Void)?
        var started = false
        var stopRequested = false
        /// Set by the service thread before it destroys the context; no wake after that.
        var stopped = false
        /// Set by the service thread once the context is gone.
        var destroyed = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let inbox = Locked(Inbox())
    private let logger: Logger
    private let defaultURL: ViewerURL
    private let insecure: Bool
    /// `Bearer TOKEN`, sent as the Authorization header (C string, owned).
    private let authorization: UnsafeMutablePointer<CChar>?
    private let caFile: UnsafeMutablePointer<CChar>?
    private let pingTimeout: Duration
    /// This viewer's share of lws's process-wide log hook.
    private let libraryLog: LibWebSocketsLog

    // Owned C memory: allocated in init, freed in deinit.
    private let setup: UnsafeMutablePointer<statecast_client_setup>
    /// Where lws stores the connection's handle as soon as it exists.
    private let currentWSI: UnsafeMutablePointer<OpaquePointer?>
    /// Set once in init and never changed; destroyed by the service thread
    /// when its loop ends, or by deinit if no loop ever ran.
    private var context: OpaquePointer?

    // Service thread only.
    private var handler: (@Sendable (TransportEvent) -> Void)?
    /// "HOST:PORT" of the connection under way (for messages).
    private var endpoint: String
    private var attemptReported = true
    private var established = false
    private var closeRequested = false
    private var peerCloseCode: UInt16?
    private var handshakeStatus: Int?
    /// The Location of a 3xx handshake answer (redacted, printable, capped).
    private var redirectLocation: String?
    /// Why the viewer failed the connection itself (close 1009), reported when it ends.
    private var failure: String?
    private var assembler: MessageAssembler
    private var lastSignOfLife = ContinuousClock.now

    init(url: ViewerURL, configuration: ViewerConfiguration, logger: Logger) throws(ViewerError) {
        let policy = try configuration.validatedPingSeconds()
        self.logger = logger
        defaultURL = url
        endpoint = Self.endpoint(of: url)
        insecure = configuration.allowsInsecureTLS
        authorization = configuration.token.map { strdup("Bearer \($0)") }
        caFile = configuration.certificateAuthorityFile.map { strdup($0) }
        pingTimeout = .seconds(Int(policy.hangup))
        assembler = MessageAssembler(maximumBytes: configuration.maximumMessageBytes)
        setup = .allocate(capacity: 1)
        currentWSI = .allocate(capacity: 1)
        currentWSI.initialize(to: nil)
        statecast_client_setup_init(setup, lwsViewerCallback, 65536, policy.ping, policy.hangup)

        libraryLog = LibraryLog.register(logger: logger)
        let timeout = UInt32(max(1, configuration.connectTimeout.seconds.rounded(.up)))
        context = statecast_client_context_create(setup, Unmanaged.passUnretained(self).toOpaque(), timeout, caFile)
        guard context != nil else {
            throw ViewerError(
                code: .engineFailure,
                message: "libwebsockets could not create its client context",
                fix: "check that libwebsockets is installed (apt-get install libwebsockets-dev) and that the process may open sockets"
            )
        }
    }

    deinit {
        if let context, !inbox.withLock({ $0.started }) { lws_context_destroy(context) }
        free(authorization)
        free(caFile)
        currentWSI.deallocate()
        setup.deallocate()
    }

    // MARK: Any thread

    func start(handler: @escaping @Sendable (TransportEvent) -> Void) {
        let shouldStart = inbox.withLock { inbox -> Bool in
            guard !inbox.started else { return false }
            inbox.started = true
            inbox.handler = handler
            return true
        }
        guard shouldStart else { return }
        // The thread owns a strong reference until its loop has ended and the context is gone.
        let retained = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let transport = Unmanaged<LWSTransport>.fromOpaque(argument).takeRetainedValue()
            transport.runServiceLoop()
            return nil
        }, retained)
        if result == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<LWSTransport>.fromOpaque(retained).release()
            logger.error("could not start the viewer's service thread (pthread_create: \(result))")
            handler(.connectionError(reason: "could not start the service thread", httpStatus: nil))
        }
    }

    func open(path: String) { enqueue(.open(defaultURL, path: path)) }

    func open(url: ViewerURL, path: String) { enqueue(.open(url, path: path)) }

    private static func endpoint(of url: ViewerURL) -> String {
        "\(url.isIPv6 ? "[\(url.host)]" : url.host):\(url.port)"
    }

    func close(code: UInt16) { enqueue(.close(code)) }

    func shutdown() async {
        let wasStarted = inbox.withLock { inbox -> Bool in
            inbox.stopRequested = true
            return inbox.started
        }
        guard wasStarted else { return }
        wake()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let alreadyStopped = inbox.withLock { inbox -> Bool in
                if inbox.destroyed { return true }
                inbox.stopWaiters.append(continuation)
                return false
            }
            if alreadyStopped { continuation.resume() }
        }
    }

    /// Asks the loop to stop without waiting (used when the owner goes away).
    func requestStop() {
        inbox.withLock { $0.stopRequested = true }
        wake()
    }

    private func enqueue(_ command: Command) {
        inbox.withLock { $0.commands.append(command) }
        wake()
    }

    private func wake() {
        // lws_cancel_service is the one lws call allowed from any thread. It
        // runs under the lock so that it cannot overlap the context's
        // destruction, which the service thread starts only after setting
        // `stopped` under the same lock.
        inbox.withLock { inbox in
            if !inbox.stopped, let context { statecast_client_wake(context) }
        }
    }

    // MARK: Service thread

    private func runServiceLoop() {
        handler = inbox.withLock { $0.handler }
        guard let context else { return }
        while !inbox.withLock({ $0.stopRequested }) {
            if lws_service(context, 0) < 0 { break }
        }
        inbox.withLock { $0.stopped = true }
        lws_context_destroy(context)
        let waiters = inbox.withLock { inbox -> [CheckedContinuation<Void, Never>] in
            inbox.destroyed = true
            defer { inbox.stopWaiters = [] }
            return inbox.stopWaiters
        }
        waiters.forEach { $0.resume() }
    }

    private func report(_ event: TransportEvent) {
        handler?(event)
    }

    /// Translates one libwebsockets callback into state changes and events.
    fileprivate func callback(_ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ data: UnsafeMutableRawPointer?,
                              _ length: Int) -> Int32 {
        switch reason {
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            drainCommands()

        case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
            if let wsi, let authorization, let data, statecast_client_append_authorization(wsi, data, length, authorization) != 0 {
                return -1
            }

        case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
            // Called with the handshake response in hand, before lws checks it for 101.
            if isCurrent(wsi), let wsi {
                handshakeStatus = Int(lws_http_client_http_response(wsi))
                if let status = handshakeStatus, (300..<400).contains(status) { redirectLocation = Self.location(of: wsi) }
            }

        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            guard isCurrent(wsi) else { break }
            established = true
            lastSignOfLife = .now
            logger.debug("connected to \(endpoint)")
            report(.established)
            if closeRequested, let wsi { lws_callback_on_writable(wsi) }

        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            guard isCurrent(wsi), !attemptReported else { break }
            let text = data.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "unknown error"
            var status = handshakeStatus
            if let wsi, status == nil || status == 0 {
                let response = Int(lws_http_client_http_response(wsi))
                status = response == 0 ? nil : response
            }
            if status == 101 { status = nil }
            let location = redirectLocation
            finishAttempt()
            logger.debug("connection to \(endpoint) failed: \(text)\(status.map { " (HTTP \($0))" } ?? "")")
            let reason = if let status, (300..<400).contains(status) {
                Self.describe(redirect: status, to: location, endpoint: endpoint)
            } else {
                Self.describe(connectionError: text, endpoint: endpoint)
            }
            report(.connectionError(reason: reason, httpStatus: status))

        case LWS_CALLBACK_CLIENT_RECEIVE:
            guard isCurrent(wsi), let wsi else { break }
            receive(wsi, data, length)

        case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
            lastSignOfLife = .now

        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            if isCurrent(wsi) {
                let code = statecast_client_check_close_code(data, length)
                // A reason that is not UTF-8 fails the connection (RFC 6455 §8.1): answered with 1007.
                if let data, length > 2, !UTF8Validator.isValid(UnsafeRawBufferPointer(start: data + 2, count: length - 2)) {
                    statecast_client_replace_close(data, length, 1007)
                }
                peerCloseCode = code == 0 ? 1005 : UInt16(truncatingIfNeeded: code)
            }

        case LWS_CALLBACK_CLIENT_WRITEABLE:
            // The viewer failed the connection (1007, 1009): the close code is set, lws sends it.
            if isCurrent(wsi), failure != nil { return -1 }
            if isCurrent(wsi), closeRequested, let wsi {
                statecast_client_set_close_normal(wsi)
                return -1
            }

        case LWS_CALLBACK_CLIENT_CLOSED:
            guard isCurrent(wsi), !attemptReported else { break }
            reportClosed()

        case LWS_CALLBACK_WSI_DESTROY:
            // Backstop: a connection that vanished without either report above.
            guard isCurrent(wsi), !attemptReported else { break }
            if established {
                reportClosed()
            } else {
                finishAttempt()
                report(.connectionError(reason: "the connection to \(endpoint) was dropped", httpStatus: nil))
            }

        default:
            break
        }
        return 0
    }

    private func isCurrent(_ wsi: OpaquePointer?) -> Bool {
        wsi != nil && wsi == currentWSI.pointee
    }

    private func reportClosed() {
        let code = peerCloseCode
        let silentFor = ContinuousClock.now - lastSignOfLife
        let wasIntentional = closeRequested
        let failure = self.failure
        finishAttempt()
        if let failure {
            logger.debug("connection to \(endpoint) failed by the viewer: \(failure)")
            report(.failed(reason: failure))
        } else if code == nil, !wasIntentional, silentFor >= pingTimeout - .milliseconds(500) {
            logger.debug("no answer from \(endpoint) for \(formatSeconds(silentFor)) s: ping timeout")
            report(.pingTimeout)
        } else {
            logger.debug("connection to \(endpoint) closed (\(code.map { "code \($0)" } ?? "no close frame"))")
            report(.closed(code: code))
        }
    }

    private func finishAttempt() {
        attemptReported = true
        established = false
        closeRequested = false
        currentWSI.pointee = nil
        redirectLocation = nil
        failure = nil
        assembler.reset()
    }

    private func drainCommands() {
        let commands = inbox.withLock { inbox -> [Command] in
            defer { inbox.commands = [] }
            return inbox.commands
        }
        for command in commands {
            switch command {
            case let .open(url, path): openConnection(to: url, path: path)
            case let .close(code): closeConnection(code: code)
            }
        }
    }

    private func openConnection(to url: ViewerURL, path: String) {
        guard currentWSI.pointee == nil, let context else {
            logger.debug("open ignored: a connection is already under way")
            return
        }
        attemptReported = false
        established = false
        closeRequested = false
        peerCloseCode = nil
        handshakeStatus = nil
        redirectLocation = nil
        failure = nil
        assembler.reset()
        endpoint = Self.endpoint(of: url)
        logger.debug("connecting to \(endpoint)\(TokenRedaction.redact(path))")
        // lws copies the strings it is given before this call returns.
        let wsi = path.withCString { path in
            url.host.withCString { address in
                url.hostHeader.withCString { hostHeader in
                    statecast_client_connect(
                        context, setup, address, Int32(url.port), path, hostHeader, url.secure ? 1 : 0, insecure ? 1 : 0, currentWSI)
                }
            }
        }
        if wsi == nil, !attemptReported {
            finishAttempt()
            // libwebsockets 4.1.6 resolves the name inside the call and only returns NULL; ask again to tell why.
            let reason = url.isIPv6 || Self.resolves(url.host)
                ? "could not start a connection to \(endpoint)"
                : "could not resolve \(url.host); check the host name in the URL"
            report(.couldNotStart(reason: reason))
        }
    }

    /// Whether `host` resolves to an address (getaddrinfo, as libwebsockets does; IP literals always do).
    private static func resolves(_ host: String) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &result)
        if let result { freeaddrinfo(result) }
        return status == 0
    }

    private func closeConnection(code: UInt16) {
        guard let wsi = currentWSI.pointee, !attemptReported else {
            report(.closed(code: nil))
            return
        }
        closeRequested = true
        if established {
            lws_callback_on_writable(wsi)
        } else {
            statecast_client_abandon(wsi)
        }
    }

    /// Collects one fragment. A message over the limit or with invalid UTF-8
    /// fails the connection: the close code is set here and the connection is
    /// closed from the next CLIENT_WRITEABLE, never by returning -1 here —
    /// lws 4.1.6's client parser does not reset its receive buffer when the
    /// callback refuses part of a frame, and the rest of the frame, still
    /// parsed while lws waits for the close answer, would be written past it.
    private func receive(_ wsi: OpaquePointer, _ data: UnsafeMutableRawPointer?, _ length: Int) {
        lastSignOfLife = .now
        lws_validity_confirmed(wsi)
        guard failure == nil else { return }  // what follows a failure is not looked at
        let outcome = assembler.take(
            data.map { UnsafeRawBufferPointer(start: $0, count: length) } ?? UnsafeRawBufferPointer(start: nil, count: 0),
            first: lws_is_first_fragment(wsi) != 0, final: lws_is_final_fragment(wsi) != 0,
            remaining: Int(lws_remaining_packet_payload(wsi)), binary: lws_frame_is_binary(wsi) != 0)
        switch outcome {
        case .incomplete:
            break
        case let .complete(frame):
            report(.message(frame))
        case let .tooBig(count):
            report(.message(.oversized(byteCount: count)))
            fail(wsi, code: 1009, reason: "the host sent a message of at least \(count) bytes, over the viewer's limit of "
                + "\(assembler.maximumBytes) bytes (closed with 1009)")
        case .invalidUTF8:
            fail(wsi, code: 1007, reason: "the host sent a text message that is not valid UTF-8 (closed with 1007)")
        }
    }

    /// Fails the connection with `code` from the next CLIENT_WRITEABLE; `reason` is reported when it has ended.
    private func fail(_ wsi: OpaquePointer, code: UInt16, reason: String) {
        failure = reason
        statecast_client_set_close_code(wsi, code)
        lws_callback_on_writable(wsi)
    }

    /// The Location header of the handshake answer in hand: printable, token
    /// redacted, at most 200 characters; nil if there is none.
    private static func location(of wsi: OpaquePointer) -> String? {
        guard let bytes = LWSRequest.read(capacity: 1024, { statecast_client_location(wsi, $0, $1) }), !bytes.isEmpty else { return nil }
        let printable = String(decoding: bytes.filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self)
        let redacted = TokenRedaction.redact(printable)
        return redacted.count > 200 ? String(redacted.prefix(200)) + "…" : redacted
    }

    /// A redirect answer as one sentence: the viewer never follows it.
    static func describe(redirect status: Int, to location: String?, endpoint: String) -> String {
        "\(endpoint) answered with a redirect (HTTP \(status)) to \(location ?? "an address it did not name"); "
            + "the viewer does not follow redirects, so its token stays with the host you named: "
            + "connect to the new address directly if you trust it"
    }

    /// Certificate problems as one sentence with the fix.
    static func describe(tlsError lowered: String, endpoint: String) -> String? {
        func has(_ code: Int) -> Bool { lowered.contains("x509_v_err = \(code):") }
        if has(10) || lowered.contains("certificate has expired") {
            return "the certificate of \(endpoint) has expired; renew it on the host (or pass --insecure to connect anyway)"
        }
        // 62: a DNS name not in the certificate; 64: an IP literal not in its IP SANs.
        if has(62) || has(64) || lowered.contains("hostname mismatch") || lowered.contains("ip address mismatch") {
            return "the certificate of \(endpoint) is for another host name; connect with the name the certificate was issued for (or pass --insecure)"
        }
        if has(18) || has(19) || has(20) || has(21) || has(2) || lowered.contains("self-signed")
            || lowered.contains("unable to get local issuer") || lowered.contains("certificate verify failed") {
            return "the certificate of \(endpoint) is signed by an unknown CA; pass --ca FILE with the CA that signed it (or --insecure)"
        }
        if lowered.contains("ssl") || lowered.contains("tls") {
            return "the TLS handshake with \(endpoint) failed (\(lowered)); check that the host serves wss:// on that port"
        }
        return nil
    }

    /// A readable reason from libwebsockets' connection-error text.
    static func describe(connectionError text: String, endpoint: String) -> String {
        let lowered = text.lowercased()
        if lowered.contains("refused") || lowered.contains("unable to connect") {
            return "\(endpoint) refused the connection (is the host running?)"
        }
        if lowered.contains("timed out") || lowered.contains("timeout") { return "\(endpoint) did not answer in time" }
        if lowered.contains("dns") || lowered.contains("getaddrinfo") || lowered.contains("resolve") {
            return "the host name in \(endpoint) could not be resolved"
        }
        if lowered.contains("ssl"), let verify = LibraryLog.takeVerifyError() {
            return describe(tlsError: "x509_v_err = \(verify.code): \(verify.reason.lowercased())", endpoint: endpoint)
                ?? "the certificate of \(endpoint) was rejected (\(verify.reason)); fix it on the host (or pass --insecure)"
        }
        if let tls = describe(tlsError: lowered, endpoint: endpoint) { return tls }
        if lowered.hasPrefix("hs:") { return "the WebSocket handshake with \(endpoint) failed (\(text.dropFirst(3).drop(while: { $0 == " " })))" }
        return "the connection to \(endpoint) failed (\(text))"
    }
}

/// The C entry point for every libwebsockets callback of a viewer context.
private let lwsViewerCallback: @convention(c) (
    OpaquePointer?, lws_callback_reasons, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, Int
) -> Int32 = { wsi, reason, _, data, length in
    guard let wsi, let context = lws_get_context(wsi), let owner = lws_context_user(context) else { return 0 }
    let transport = Unmanaged<LWSTransport>.fromOpaque(owner).takeUnretainedValue()
    return transport.callback(wsi, reason, data, length)
}
