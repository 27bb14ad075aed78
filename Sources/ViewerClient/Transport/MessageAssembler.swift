/// Joins the fragments of one WebSocket message, as libwebsockets hands them
/// over, into an ``IncomingFrame`` — without ever holding more than
/// `maximumBytes` (issue 13, item 10). No I/O: the transport feeds it from
/// `LWS_CALLBACK_CLIENT_RECEIVE`, the `viewer` fuzz target feeds it directly.
///
/// A message is too big as soon as what arrived plus what the current frame
/// still declares passes the limit, so a frame announcing 1 TiB fails at its
/// first bytes. A text message fails at the first byte that is not valid
/// UTF-8, or at its end when a sequence is left open (``UTF8Validator``).
struct MessageAssembler: Sendable {
    /// What one chunk completed.
    enum Outcome: Sendable, Equatable {
        /// The message goes on.
        case incomplete
        /// The last chunk of a message arrived.
        case complete(IncomingFrame)
        /// The message passed the limit; the caller fails the connection (1009).
        case tooBig(byteCount: Int)
        /// A text message is not valid UTF-8; the caller fails the connection (1007).
        case invalidUTF8
    }

    /// The largest message taken.
    let maximumBytes: Int
    private var bytes: [UInt8] = []
    private var count = 0
    private var utf8 = UTF8Validator()

    init(maximumBytes: Int) {
        self.maximumBytes = maximumBytes
    }

    /// Bytes held now (never more than ``maximumBytes``).
    var heldBytes: Int { bytes.count }

    /// Takes one chunk. `first`: it starts a message; `final`: its frame is
    /// the message's last; `remaining`: bytes its frame still declares after
    /// it; `binary`: the message is binary (only its size is kept).
    mutating func take(_ chunk: UnsafeRawBufferPointer, first: Bool, final: Bool, remaining: Int, binary: Bool) -> Outcome {
        if first { reset() }
        count += chunk.count
        let announced = count.addingReportingOverflow(max(0, remaining))
        if announced.overflow || announced.partialValue > maximumBytes {
            let size = announced.overflow ? Int.max : announced.partialValue
            reset()
            return .tooBig(byteCount: size)
        }
        if !binary {
            guard utf8.take(chunk), !final || remaining > 0 || utf8.isComplete else {
                reset()
                return .invalidUTF8
            }
            bytes.append(contentsOf: chunk)
        }
        guard final, remaining == 0 else { return .incomplete }
        let frame: IncomingFrame = binary ? .binary(byteCount: count) : .text(bytes)
        reset()
        return .complete(frame)
    }

    /// Forgets the message under way.
    mutating func reset() {
        bytes.removeAll(keepingCapacity: bytes.capacity <= 1 << 20)
        count = 0
        utf8.reset()
    }
}
