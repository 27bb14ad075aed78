// libFuzzer target `viewer`: the viewer's frame-to-state path, as a hostile host drives it —
// fragments joined by MessageAssembler (size limit, UTF-8 checked by UTF8Validator against the
// standard library), each message applied by ViewerState
// (whitelist), and the resume query the next connection would carry (ResumeLimits).
// Build and run with scripts/fuzz; what it checks is listed in Fuzz/README.md.
import Envelope

/// The assembler's limit here: small, so that libFuzzer's inputs (up to 8 KiB) reach it.
private let fuzzMaximumBytes = 2048

/// Input format: messages separated by the byte 0xFF (never part of UTF-8, so JSON
/// seeds stay readable). Each message starts with one control byte:
/// bit 0 binary, bit 1 sent in fragments of `(bits 2-6) + 1` bytes, bit 7 its first
/// frame declares 1 TiB more than it carries (a host announcing a huge frame).
@_cdecl("LLVMFuzzerTestOneInput")
public func viewerFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var assembler = MessageAssembler(maximumBytes: fuzzMaximumBytes)
    var state = ViewerState()
    var lastFullConfig: JSONObject?
    var messages = 0

    for piece in bytes.split(separator: 0xFF, omittingEmptySubsequences: true) {
        let control = piece[piece.startIndex]
        let payload = Array(piece.dropFirst())
        let binary = control & 1 != 0
        let fragmentSize = control & 2 != 0 ? Int((control >> 2) & 0x1F) + 1 : max(1, payload.count)
        let announcesHuge = control & 0x80 != 0

        var frame: IncomingFrame?
        var invalid = false
        var offset = 0
        repeat {
            let end = min(payload.count, offset + fragmentSize)
            let final = end == payload.count
            let remaining = announcesHuge && offset == 0 ? 1 << 40 : 0
            let outcome = payload[offset..<end].withUnsafeBytes { chunk in
                assembler.take(chunk, first: offset == 0, final: final, remaining: remaining, binary: binary)
            }
            require(assembler.heldBytes <= fuzzMaximumBytes, "assembler holds \(assembler.heldBytes) bytes")
            offset = end
            switch outcome {
            case .incomplete:
                require(!final || remaining > 0, "a final chunk left the message incomplete")
            case let .complete(complete):
                require(final, "a message completed before its final chunk")
                frame = complete
            case let .tooBig(count):
                require(count > fuzzMaximumBytes, "tooBig for \(count) bytes under the limit")
                require(assembler.heldBytes == 0, "a refused message was kept")
                frame = .oversized(byteCount: count)
            case .invalidUTF8:
                // Differential check against the standard library: only invalid text is refused.
                require(!binary, "a binary message was checked for UTF-8")
                require(String(validating: payload, as: UTF8.self) == nil, "valid UTF-8 refused")
                require(assembler.heldBytes == 0, "a refused message was kept")
                invalid = true
            }
        } while offset < payload.count && frame == nil && !invalid

        guard let frame else { continue }
        switch frame {
        case let .text(text):
            require(text == payload, "the assembled text differs from what was sent")
            require(String(validating: text, as: UTF8.self) != nil, "a text message with invalid UTF-8 was completed")
            require(payload.count <= fuzzMaximumBytes, "a message over the limit was completed")
        case let .binary(count):
            require(binary && count == payload.count, "binary message of \(count) bytes for \(payload.count) sent")
        case .oversized:
            require(payload.count > fuzzMaximumBytes || announcesHuge, "oversized for \(payload.count) bytes")
        }
        messages += 1
        let before = state.session
        let outcome = state.apply(frame)
        checkApplied(outcome, state: state, before: before, lastFullConfig: &lastFullConfig, messages: messages)
    }
    return 0
}

/// What applying one message may do to the state.
private func checkApplied(_ outcome: ViewerState.Outcome, state: ViewerState, before: Session?,
                          lastFullConfig: inout JSONObject?, messages: Int) {
    let counters = state.counters
    require(counters.messagesReceived == messages, "received \(counters.messagesReceived) of \(messages)")
    require(counters.sessionUpdatesApplied + counters.configUpdatesApplied + counters.messagesDropped == messages,
            "applied + dropped != received: \(counters)")

    switch outcome {
    case let .dropped(reason):
        require(state.session == before, "a dropped message (\(reason)) changed the state")
        require(!reason.description.isEmpty, "empty drop reason")
    case let .applied(change, rejected):
        guard let session = state.session else { return require(false, "applied without a session") }
        require(change.session == session, "the change does not carry the state")
        if change.type == "session_update" {
            lastFullConfig = session.config
        } else {
            // A config_update merges only keys the derived whitelist knows, with an accepted type.
            require(Set(session.config.keys) == Set((lastFullConfig ?? [:]).keys), "a config_update added or removed keys")
            guard let schema = state.activeSchema else { return require(false, "config_update applied without a schema") }
            for key in change.changedKeys {
                require(session.config[key].map { schema.accepts($0, forKey: key) } == true, "\(key) merged against the schema")
            }
            require(!change.changedKeys.isEmpty, "config_update applied with nothing accepted")
            for rejection in rejected { require(!rejection.description.isEmpty, "empty rejection") }
        }
        // The line the CLI prints decodes to the same change.
        let line = change.json.encoded()
        switch Result(catching: { () throws(JSONError) -> JSONValue in try JSONValue(parsing: line) }) {
        case let .success(value): require(identical(value, change.json), "the change line does not round-trip")
        case let .failure(error): require(false, "the change line does not decode: \(error)")
        }
    }

    // The resume query the next connection carries: short, printable ASCII, no separators smuggled in.
    if let query = ResumeLimits.query(for: state) {
        require(query.utf8.count <= 6 + 20 + 7 + 3 * ResumeLimits.maximumEpochLength, "resume query of \(query.utf8.count) bytes")
        require(query.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") }, "unsafe resume query \(query)")
        require(query.split(separator: "&").count == 2, "resume query with extra parameters: \(query)")
    }
}
