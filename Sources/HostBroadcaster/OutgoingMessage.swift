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
        storage = .allocate(byteCount: Self.headroom + bytes.count, alignment: 16)
        bytes.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: storage[Self.headroom...]).copyMemory(from: source)
        }
    }

    deinit { storage.deallocate() }

    /// Start of the payload (headroom lies before it).
    var payload: UnsafeMutablePointer<UInt8> {
        storage.baseAddress!.advanced(by: Self.headroom).assumingMemoryBound(to: UInt8.self)
    }

    /// The payload as bytes (tests and HTTP).
    var bytes: [UInt8] { Array(UnsafeRawBufferPointer(rebasing: storage[Self.headroom...])) }
}
