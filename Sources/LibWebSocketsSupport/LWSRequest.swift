import CLibWebSockets

/// Reading an HTTP request's (or handshake answer's) headers and query from
/// libwebsockets into Swift strings. Service thread only, like every lws call.
package enum LWSRequest {
    /// The bytes `fill` copies into a buffer of `capacity` characters; nil
    /// when it returns a negative length (absent). `fill` gets the buffer and
    /// its size and returns the length it wrote.
    package static func read(capacity: Int, _ fill: (UnsafeMutablePointer<CChar>, Int32) -> Int32) -> [UInt8]? {
        var buffer = [CChar](repeating: 0, count: capacity)
        let length = buffer.withUnsafeMutableBufferPointer { fill($0.baseAddress!, Int32($0.count)) }
        guard length >= 0 else { return nil }
        return buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }
    }

    /// Query argument `name` ("since=") of the request, if present.
    package static func queryArgument(_ wsi: OpaquePointer, _ name: String) -> String? {
        // Room for the whole query: lws gives up at the first argument longer
        // than the buffer, which would hide the arguments after it.
        let capacity = Int(max(256, statecast_query_capacity(wsi)))
        return text(read(capacity: capacity) { statecast_query_arg(wsi, name, $0, $1) })
    }

    /// Request header `name` (lower case, with colon), if present.
    package static func header(_ wsi: OpaquePointer, _ name: String) -> String? {
        text(read(capacity: 256) { statecast_custom_header(wsi, name, $0, $1) })
    }

    /// The request header lws knows by `token` (`statecast_header_origin()` …), if present.
    package static func header(_ wsi: OpaquePointer, _ token: Int32) -> String? {
        text(read(capacity: 4096) { statecast_header(wsi, lws_token_indexes(UInt32(token)), $0, $1) })
    }

    /// The request URI, query included ("" if lws has none).
    package static func uri(_ wsi: OpaquePointer) -> String { header(wsi, statecast_header_get_uri()) ?? "" }

    /// The request path, without its query.
    package static func path(_ wsi: OpaquePointer) -> String {
        let uri = uri(wsi)
        return uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
    }

    private static func text(_ bytes: [UInt8]?) -> String? {
        bytes.map { String(decoding: $0, as: UTF8.self) }
    }
}
