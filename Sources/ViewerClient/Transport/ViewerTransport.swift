/// What the transport reports to the driver (on its own thread).
enum TransportEvent: Sendable, Hashable {
    /// The WebSocket handshake completed.
    case established
    /// An established connection closed; `code` is the host's close code, nil if it sent none.
    case closed(code: UInt16?)
    /// The host stopped answering pings and the connection was dropped.
    case pingTimeout
    /// A connection attempt failed; `httpStatus` is set when the host answered with a status other than 101.
    case connectionError(reason: String, httpStatus: Int?)
    /// A connection attempt could not even start (lws refused the request, for
    /// example a path it cannot hold); the driver retries without the resume query.
    case couldNotStart(reason: String)
    /// The viewer failed an established connection itself (a message over the
    /// size limit: close 1009); `reason` says why, as one phrase.
    case failed(reason: String)
    /// A complete message arrived.
    case message(IncomingFrame)
}

/// The I/O side of a viewer: one connection at a time, to the host (or, with
/// failover, to one of several equivalent hosts) the driver names.
///
/// The driver (`ViewerClient`) decides *when* to open and close; the
/// transport only does it and reports what happened. Both calls return at
/// once and may be made from any thread; the outcome arrives as a
/// ``TransportEvent``.
protocol ViewerTransport: Sendable {
    /// Starts the events flowing to `handler`; called once, before anything else.
    func start(handler: @escaping @Sendable (TransportEvent) -> Void)
    /// Opens a connection requesting `path` (path and query; ignored while a
    /// connection is open or being opened).
    func open(path: String)
    /// Opens a connection to `url`'s host and port requesting `path` (failover
    /// between several URLs). Transports bound to one host may ignore `url`.
    func open(url: ViewerURL, path: String)
    /// Closes the connection with `code` (1000); an attempt not yet
    /// established is abandoned. Reports `.closed` or `.connectionError`.
    func close(code: UInt16)
    /// Stops the engine for good and waits until it has stopped.
    func shutdown() async
    /// Asks the engine to stop, without waiting (for `deinit`).
    func requestStop()
}

extension ViewerTransport {
    /// A transport bound to one host ignores the URL.
    func open(url: ViewerURL, path: String) { open(path: path) }
}
