/// What a resume query (`?since=SEQ&epoch=EPOCH`, docs/PROTOCOL.md §4) may
/// carry. The epoch comes from the host, so a hostile or broken host could
/// otherwise make every later request (to any URL, failover included) as long
/// or as strange as it likes (issue 13, item 14).
///
/// A StateCast host's epoch is 16 hex digits; anything longer than
/// ``maximumEpochLength`` or outside `[A-Za-z0-9._:-]` is not resumed from:
/// the viewer reconnects without the query and gets the full state.
enum ResumeLimits {
    /// The longest epoch a resume query carries.
    static let maximumEpochLength = 64

    /// True when `epoch` may go into a request line as it is.
    static func accepts(epoch: String) -> Bool {
        guard !epoch.isEmpty, epoch.utf8.count <= maximumEpochLength else { return false }
        return epoch.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: ":"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }

    /// `state`'s resume query when its position is one the viewer may send, else nil.
    static func query(for state: ViewerState) -> String? {
        guard let epoch = state.lastEpoch, accepts(epoch: epoch), let seq = state.lastSeq, seq >= 0 else { return nil }
        return state.resumeQuery
    }
}
