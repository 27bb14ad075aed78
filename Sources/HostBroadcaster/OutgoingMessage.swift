import CLibWebSockets

/// One encoded envelope with libwebsockets' headroom in front, shared by every viewer.
///
/// Server frames are not masked, so the same bytes go to each viewer in turn;
/// lws writes the frame header into the headroom, which is the same for all.
/// Only the service thread touches the headroom, so sharing is safe.
final class OutgoingMessage: @unchecked Sendable {
    // @unchecked: `storage` is written once in init (on the producer thread, before
    // the message is handed over under the inbox Mutex) and afterwards only the
    // service thread reads it and lets lws write into the headroom. `sse` is
    // created and read on the service thread only.
    let seq: Int64
    /// The host run that numbered `seq` (the SSE event id carries it); nil for control messages.
    let epoch: String?
    let isFullState: Bool
    let payloadCount: Int
    /// A relay's upstream changed epoch: every viewer needs the full state again.
    let resetsViewers: Bool
    private let storage: UnsafeMutableRawBufferPointer
    static let headroom = Int(statecast_lws_pre())

    /// Copies `bytes` behind the headroom.
    init(seq: Int64, epoch: String? = nil, isFullState: Bool, bytes: [UInt8], resetsViewers: Bool = false) {
        self.seq = seq
        self.epoch = epoch
        self.isFullState = isFullState
        self.resetsViewers = resetsViewers
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

    /// The same envelope as one Server-Sent Event, made on first use and then
    /// shared by every SSE viewer (service thread only).
    var serverSentEvent: OutgoingMessage {
        if let sse { return sse }
        let rendered = Self.renderEvent(envelope: bytes, id: Resume.eventID(epoch: epoch, seq: seq), isFullState: isFullState)
        let made = OutgoingMessage(seq: seq, epoch: epoch, isFullState: isFullState, bytes: rendered)
        sse = made
        return made
    }
    private var sse: OutgoingMessage?

    /// `event: TYPE` / `id: EPOCH:SEQ` / `data: PAYLOAD`: the payload is cut out of the
    /// envelope's bytes (the encoder writes `payload` last; compact JSON has no
    /// raw newlines, so it fits one `data:` line).
    static func renderEvent(envelope: [UInt8], id: String, isFullState: Bool) -> [UInt8] {
        let marker = Array(#""payload":"#.utf8)
        var payload = ArraySlice<UInt8>()
        if let range = envelope.firstRange(of: marker), envelope.last == UInt8(ascii: "}") {
            payload = envelope[range.upperBound..<(envelope.endIndex - 1)]
        }
        var out = Array("event: \(isFullState ? "session_update" : "config_update")\nid: \(id)\ndata: ".utf8)
        out.append(contentsOf: payload)
        out.append(contentsOf: [10, 10])
        return out
    }
}
