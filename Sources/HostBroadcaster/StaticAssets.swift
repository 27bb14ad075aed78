/// Files the host serves over plain HTTP GET, embedded in the binary.
enum StaticAssets {
    struct Asset: Sendable {
        let contentType: String
        let body: [UInt8]
    }

    /// The asset at `path`, if any.
    static func lookup(_ path: String) -> Asset? {
        nil
    }
}
