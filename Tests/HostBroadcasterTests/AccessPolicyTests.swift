@testable import HostBroadcaster
import Testing

@Suite struct AccessPolicyTests {
    let goodKey = "dGhlIHNhbXBsZSBub25jZQ=="
    private func upgrade(_ adjust: (inout AccessPolicy.Request) -> Void = { _ in }) -> AccessPolicy.Request {
        var request = AccessPolicy.Request(method: "GET", webSocketKey: goodKey, webSocketVersion: "13")
        adjust(&request)
        return request
    }

    @Test func openPolicyAdmitsAWellFormedUpgrade() {
        #expect(AccessPolicy(token: nil, allowedOrigins: [], maxClients: nil).check(upgrade(), clientCount: 1000) == nil)
    }

    @Test func tokenIsAcceptedAsBearerOrQueryAndRefusedOtherwise() {
        let policy = AccessPolicy(token: "s3cret", allowedOrigins: [], maxClients: nil)
        #expect(policy.check(upgrade { $0.authorization = "Bearer s3cret" }, clientCount: 0) == nil)
        #expect(policy.check(upgrade { $0.queryToken = "s3cret" }, clientCount: 0) == nil)
        #expect(policy.check(upgrade(), clientCount: 0)?.status == 401)
        #expect(policy.check(upgrade { $0.authorization = "Bearer s3cre" }, clientCount: 0)?.status == 401)
        #expect(policy.check(upgrade { $0.authorization = "Basic s3cret" }, clientCount: 0)?.status == 401)
        #expect(policy.check(upgrade { $0.queryToken = "s3cret2" }, clientCount: 0)?.status == 401)
    }

    @Test func originsAreCheckedOnlyWhenListed() {
        let policy = AccessPolicy(token: nil, allowedOrigins: ["https://ok.example"], maxClients: nil)
        #expect(policy.check(upgrade { $0.origin = "https://ok.example" }, clientCount: 0) == nil)
        #expect(policy.check(upgrade { $0.origin = "https://evil.example" }, clientCount: 0)?.status == 403)
        #expect(policy.check(upgrade(), clientCount: 0) == nil, "non-browser clients send no Origin")
    }

    @Test func fullHostAnswers503() {
        let policy = AccessPolicy(token: nil, allowedOrigins: [], maxClients: 2)
        #expect(policy.check(upgrade(), clientCount: 1) == nil)
        #expect(policy.check(upgrade(), clientCount: 2)?.status == 503)
    }

    @Test(arguments: [
        ("POST", "dGhlIHNhbXBsZSBub25jZQ==", "13", 405),
        ("GET", "dGhlIHNhbXBsZSBub25jZQ==", "8", 426),
        ("GET", "dGhlIHNhbXBsZSBub25jZQ==", nil, 426),
        ("GET", "short", "13", 400),
        ("GET", "dGhlIHNhbXBsZSBub25jZQ=", "13", 400),
        ("GET", "dGhlIHNhbXBsZSBub25jZR==", "13", 400),
        ("GET", "dGhlIHNhbXBsZSBub25j!Q==", "13", 400),
    ] as [(String, String, String?, Int)])
    func handshakeViolationsAreRefused(method: String, key: String, version: String?, status: Int) {
        let policy = AccessPolicy(token: nil, allowedOrigins: [], maxClients: nil)
        let request = AccessPolicy.Request(method: method, webSocketKey: key, webSocketVersion: version)
        let refusal = policy.check(request, clientCount: 0)
        #expect(refusal?.status == status)
        if status == 426 { #expect(refusal?.headers.contains("sec-websocket-version: 13") == true) }
    }

    @Test func constantTimeComparison() {
        #expect(AccessPolicy.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!AccessPolicy.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!AccessPolicy.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!AccessPolicy.constantTimeEqual([], Array("a".utf8)))
    }

    @Test func tokensAreRedactedFromLoggedURLs() {
        #expect(Redaction.redactingToken(in: "/?token=abc&since=4") == "/?token=REDACTED&since=4")
        #expect(Redaction.redactingToken(in: "/events?token=x") == "/events?token=REDACTED")
        #expect(Redaction.redactingToken(in: "/plain") == "/plain")
    }

    // Issue 13, items 4 and 8: token comparison, decoding, methods and subprotocols.

    @Test func lengthsThatDifferByAMultipleOf256NeverMatch() {
        // The old comparison kept only the low 8 bits of the length difference.
        #expect(!AccessPolicy.constantTimeEqual(Array("a".utf8), Array("a".utf8) + [UInt8](repeating: 0, count: 256)))
        #expect(!AccessPolicy.constantTimeEqual([UInt8](repeating: 0, count: 512), []))
        #expect(AccessPolicy.constantTimeEqual(Array("same".utf8), Array("same".utf8)))
    }

    @Test func theQueryTokenIsTakenAsLibwebsocketsDecodedIt() {
        let policy = AccessPolicy(token: "s3cret", allowedOrigins: [], maxClients: nil)
        // lws turned `%2573` into `%73`; decoding again would give "s".
        #expect(policy.check(upgrade { $0.queryToken = "%733cret" }, clientCount: 0)?.status == 401)
        #expect(policy.check(upgrade { $0.queryToken = "s3cret" + String(repeating: "\0", count: 256) }, clientCount: 0)?.status == 401)
        #expect(policy.check(upgrade { $0.queryToken = "s3cret" }, clientCount: 0) == nil)
    }

    @Test func onlyGetIsAllowedOnTheReadOnlyPaths() {
        #expect(AccessPolicy.methodRefusal("GET") == nil)
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"] {
            let refusal = AccessPolicy.methodRefusal(method)
            #expect(refusal?.status == 405 && refusal?.headers == ["allow: GET"], "\(method)")
        }
    }

    @Test(arguments: [("chat", 400), ("chat, superchat", 400), ("statecast", nil), ("chat, statecast", nil), (" statecast ", nil)] as [(String, Int?)])
    func anUpgradeMustOfferStatecastOrNoSubprotocol(offered: String, status: Int?) {
        let policy = AccessPolicy(token: nil, allowedOrigins: [], maxClients: nil)
        let refusal = policy.check(upgrade { $0.subprotocols = offered }, clientCount: 0)
        #expect(refusal?.status == status)
        if let refusal { #expect(refusal.body.contains("\"statecast\"")) }
        #expect(policy.check(upgrade(), clientCount: 0) == nil, "no Sec-WebSocket-Protocol at all is fine")
    }
}
