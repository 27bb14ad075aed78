import Clocks
import Envelope
import Logging
import Testing
@testable import ViewerClient

/// Issue 13, viewer side: what a hostile host can make the client hold, send
/// or print (items 10, 12, 14), over an in-memory transport and a manual clock.
@Suite("Viewer hardening", .timeLimit(.minutes(1)))
struct ViewerHardeningTests {
    let clock = TestClock()
    let transport = FakeTransport()

    func viewer(_ url: String = "ws://h:1/live?token=t", changeBufferLimit: Int = 8) throws -> ViewerClient {
        var configuration = ViewerConfiguration()
        configuration.clock = clock
        configuration.backoff.jitter = 0
        configuration.changeBufferLimit = changeBufferLimit
        return try ViewerClient(url: ViewerURL(parsing: url), configuration: configuration, logger: Logger(label: "t"),
                                transport: transport)
    }

    func fullState(seq: Int64, epoch: String) -> TransportEvent {
        .message(.text(Envelope(.sessionUpdate(Session(name: "n", config: ["a": 1])), seq: seq, epoch: epoch).encoded()))
    }

    func configUpdate(_ value: Int, seq: Int64) -> TransportEvent {
        .message(.text(Envelope(.configUpdate(["a": .int(Int64(value))]), seq: seq).encoded()))
    }

    /// Drops the connection and waits until the reconnect attempt has been opened.
    func reconnect(_ viewer: ViewerClient, _ states: inout AsyncStream<ConnectionState>.Iterator,
                   attempt: Int = 1, delay: Duration = .seconds(2)) async {
        transport.emit(.closed(code: 1001))
        while let state = await states.next(), state != .reconnecting(attempt: attempt, delay: delay) {}
        await clock.advance(by: delay)
        while let state = await states.next(), state != .connecting {}
    }

    // MARK: Item 10: bounded change stream

    @Test("a consumer that falls behind gets at most the buffer limit, always ending with the newest change")
    func changesAreBoundedAndKeepTheNewest() async throws {
        let viewer = try viewer(changeBufferLimit: 3)
        let changes = viewer.changes
        viewer.start()
        transport.emit(.established)
        transport.emit(fullState(seq: 1, epoch: "e"))
        for value in 2...100 { transport.emit(configUpdate(value, seq: Int64(value))) }
        var iterator = changes.makeAsyncIterator()
        var received: [Int64?] = []
        for _ in 0..<3 { received.append(await iterator.next()?.seq) }
        #expect(received == [98, 99, 100])
        #expect(viewer.session?.config["a"] == 100)
        await viewer.disconnect()
        #expect(await iterator.next() == nil)
    }

    @Test("a buffer limit below 1 is refused with a sentence")
    func bufferLimitIsValidated() {
        #expect(throws: ViewerError.self) { try viewer(changeBufferLimit: 0) }
    }

    // MARK: Item 14: the resume query carries only a sane position

    @Test("an epoch too long or with odd characters is never sent back; a normal one is",
          arguments: [(String(repeating: "E", count: 6000), false), (String(repeating: "e", count: 65), false),
                      ("a b", false), ("x&since=0", false), ("%00", false), ("\u{1B}]0;t", false),
                      (String(repeating: "e", count: 64), true), ("9f2c0b1e77a4d310", true), ("run-1.2_x", true)])
    func resumeQueryIsCapped(epoch: String, resumed: Bool) async throws {
        let viewer = try viewer()
        var states = viewer.states.makeAsyncIterator()
        _ = await states.next()
        viewer.start()
        transport.emit(.established)
        transport.emit(fullState(seq: 7, epoch: epoch))
        await reconnect(viewer, &states)
        #expect(transport.paths == ["/live?token=t", resumed ? "/live?token=t&since=7&epoch=\(epoch)" : "/live?token=t"])
        await viewer.disconnect()
    }

    @Test("after a connection could not start, the next attempt goes without the resume query")
    func couldNotStartDropsTheResumeQuery() async throws {
        let viewer = try viewer()
        var states = viewer.states.makeAsyncIterator()
        _ = await states.next()
        viewer.start()
        transport.emit(.established)
        transport.emit(fullState(seq: 7, epoch: "e1"))
        await reconnect(viewer, &states)
        transport.emit(.couldNotStart(reason: "could not start a connection to h:1"))
        // The second failure in a row: 3 s on the backoff schedule.
        while let state = await states.next(), state != .reconnecting(attempt: 2, delay: .seconds(3)) {}
        #expect(viewer.lastProblem == "could not start a connection to h:1")
        await clock.advance(by: .seconds(3))
        while let state = await states.next(), state != .connecting {}
        #expect(transport.paths == ["/live?token=t", "/live?token=t&since=7&epoch=e1", "/live?token=t"])
        // Once connected again, resuming comes back.
        transport.emit(.established)
        transport.emit(fullState(seq: 9, epoch: "e1"))
        await reconnect(viewer, &states)
        #expect(transport.paths.last == "/live?token=t&since=9&epoch=e1")
        await viewer.disconnect()
    }

    // MARK: Item 13: a redirect is a refusal with its own sentence

    @Test("a redirect is reported in the transport's words and retried on the schedule, never followed")
    func redirectIsARefusal() async throws {
        let viewer = try viewer()
        var states = viewer.states.makeAsyncIterator()
        _ = await states.next()
        viewer.start()
        let reason = LWSTransport.describe(redirect: 302, to: "ws://10.0.0.9:1/?token=REDACTED", endpoint: "h:1")
        transport.emit(.connectionError(reason: reason, httpStatus: 302))
        while let state = await states.next(), state != .reconnecting(attempt: 1, delay: .seconds(2)) {}
        #expect(viewer.lastProblem == reason)
        #expect(reason.contains("redirect (HTTP 302) to ws://10.0.0.9:1/"))
        #expect(transport.paths == ["/live?token=t"])
        await viewer.disconnect()
    }

    // MARK: Item 10: a message over the limit fails the connection

    @Test("a connection the viewer failed (1009) is reported with its reason and reconnected")
    func failedConnectionReconnects() async throws {
        let viewer = try viewer()
        var states = viewer.states.makeAsyncIterator()
        _ = await states.next()
        viewer.start()
        transport.emit(.established)
        transport.emit(.message(.oversized(byteCount: 1 << 40)))
        transport.emit(.failed(reason: "the host sent a message over the limit (closed with 1009)"))
        while let state = await states.next(), state != .reconnecting(attempt: 1, delay: .seconds(2)) {}
        #expect(viewer.lastProblem == "the host sent a message over the limit (closed with 1009)")
        #expect(viewer.counters.oversizedMessagesDropped == 1)
        await viewer.disconnect()
    }
}

/// Item 12: what the viewer prints and logs never shows a token.
@Suite("Token redaction")
struct TokenRedactionTests {
    @Test("token values are hidden, everything else is kept", arguments: [
        ("ws://h:1/?token=s3cret", "ws://h:1/?token=REDACTED"),
        ("/live?x=1&token=s3cret&y=2", "/live?x=1&token=REDACTED&y=2"),
        ("/live?access_token=abc#f", "/live?access_token=REDACTED#f"),
        ("/?TOKEN=abc", "/?TOKEN=REDACTED"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer REDACTED"),
        ("/live?since=1&epoch=e", "/live?since=1&epoch=e"),
        ("token=", "token=REDACTED"),
    ])
    func redacts(text: String, expected: String) {
        #expect(TokenRedaction.redact(text) == expected)
    }

    @Test("a URL prints without its token but still requests it")
    func urlDescriptionIsRedacted() throws {
        let url = try ViewerURL(parsing: "ws://127.0.0.1:9876/live?token=s3cret&x=1")
        #expect(url.description == "ws://127.0.0.1:9876/live?token=REDACTED&x=1")
        #expect(url.path == "/live?token=s3cret&x=1")
        #expect(!"\(url)".contains("s3cret"))
    }
}

/// Items 9 and 10 below the transport: what one message may be before it reaches the state.
@Suite("Message assembly")
struct MessageAssemblyTests {
    static let samples: [[UInt8]] = [
        Array("plain ascii".utf8), Array("κόσμε €𝄞 ß".utf8), [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80],
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0x80], [0x61, 0xE2, 0x82], [0xF0, 0x9F, 0x98, 0x80],
        [0xEF, 0xBF, 0xBF], [0xFF], [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80],
    ]

    @Test("UTF8Validator agrees with the standard library at every split point", arguments: samples)
    func validatorAgreesWithStandardLibrary(bytes: [UInt8]) {
        let expected = String(validating: bytes, as: UTF8.self) != nil
        for split in 0...bytes.count {
            var validator = UTF8Validator()
            let ok = bytes[..<split].withUnsafeBytes { validator.take($0) }
                && bytes[split...].withUnsafeBytes { validator.take($0) } && validator.isComplete
            #expect(ok == expected, "split at \(split) of \(bytes)")
        }
    }

    func take(_ assembler: inout MessageAssembler, _ bytes: [UInt8], first: Bool = true, final: Bool = true,
              remaining: Int = 0, binary: Bool = false) -> MessageAssembler.Outcome {
        bytes.withUnsafeBytes { assembler.take($0, first: first, final: final, remaining: remaining, binary: binary) }
    }

    @Test("a frame declaring more than the limit fails at its first chunk, holding nothing")
    func declaredLengthCounts() {
        var assembler = MessageAssembler(maximumBytes: 1024)
        #expect(take(&assembler, Array(repeating: 0x20, count: 10), final: true, remaining: 1 << 40) == .tooBig(byteCount: 10 + (1 << 40)))
        #expect(assembler.heldBytes == 0)
        #expect(take(&assembler, Array(repeating: 0x20, count: 600), final: false) == .incomplete)
        #expect(take(&assembler, Array(repeating: 0x20, count: 600), first: false) == .tooBig(byteCount: 1200))
        #expect(take(&assembler, Array("{}".utf8)) == .complete(.text(Array("{}".utf8))))
    }

    @Test("invalid UTF-8 fails the text message, across fragments and at its end; binary is not checked")
    func utf8IsCheckedPerMessage() {
        var assembler = MessageAssembler(maximumBytes: 1024)
        #expect(take(&assembler, [0x22, 0xE2, 0x82], final: false) == .incomplete)
        #expect(take(&assembler, [0xAC, 0x22], first: false) == .complete(.text([0x22, 0xE2, 0x82, 0xAC, 0x22])))
        #expect(take(&assembler, [0x22, 0xE2, 0x82], final: false) == .incomplete)
        #expect(take(&assembler, [0x28], first: false) == .invalidUTF8)
        #expect(take(&assembler, [0x22, 0xE2, 0x82]) == .invalidUTF8)
        #expect(take(&assembler, [0xFF, 0xFE], binary: true) == .complete(.binary(byteCount: 2)))
        #expect(assembler.heldBytes == 0)
    }
}
