import CLibWebSockets

/// One encoded envelope with libwebsockets' headroom in front, shared by every viewer.
///
/// Server frames are not masked, so the same bytes go to each viewer in turn;
/// lws writes the frame header into the headroom, which is the same for all.
/// Only the service thread touches the headroom, so sharing is safe.
final class OutgoingMessage: @unchecked Sendable {
    // @unchecked: `storage` is written once in init (on the producer thread, before
    // the message is handed over under the inbox Mutex) and afterwards only the
    // service thread reads it and lets lws write into the headroom.
    let seq: Int64
    let isFullState: Bool
    let payloadCount: Int
    private let storage: UnsafeMutableRawBufferPointer
    static let headroom = Int(statecast_lws_pre())

    /// Copies `bytes` behind the headroom.
    init(seq: Int64, isFullState: Bool, bytes: [UInt8]) {
        self.seq = seq
        self.isFullState = isFullState
        self.payloadCount = bytes.count
        let headroom = Self.headroom
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: headroom + bytes.count, alignment: 16)
        bytes.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: storage[headroom...]).copyMemory(from: source)
        }
        // The unmasked FIN+text header lws_write would put in front, so batches can send the frame as is.
        let count = UInt64(bytes.count)
        let header: [UInt8] =
            count < 126 ? [0x81, UInt8(count)]
            : count < 65536 ? [0x81, 126, UInt8(count >> 8), UInt8(count & 0xFF)]
            : [0x81, 127] + (0..<8).reversed().map { UInt8((count >> (8 * UInt64($0))) & 0xFF) }
        header.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: storage[(headroom - header.count)..<headroom]).copyMemory(from: source)
        }
        self.storage = storage
        frameHeaderCount = header.count
    }

    /// Bytes of WebSocket frame header in front of ``payload``.
    let frameHeaderCount: Int

    /// The whole text frame (header and payload), the same bytes for every viewer.
    var frame: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage[(Self.headroom - frameHeaderCount)..<(Self.headroom + payloadCount)])
    }

    deinit { storage.deallocate() }

    /// Start of the payload (headroom lies before it).
    var payload: UnsafeMutablePointer<UInt8> {
        storage.baseAddress!.advanced(by: Self.headroom).assumingMemoryBound(to: UInt8.self)
    }

    /// The payload as bytes (tests and HTTP).
    var bytes: [UInt8] { Array(UnsafeRawBufferPointer(rebasing: storage[Self.headroom...])) }
}
