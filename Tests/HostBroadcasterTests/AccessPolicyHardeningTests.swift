@testable import HostBroadcaster
import Testing

/// Issue 13, item 4 and 8: token comparison, decoding, methods and subprotocols (pure, no sockets).
@Suite struct AccessPolicyHardeningTests {
    let goodKey = "dGhlIHNhbXBsZSBub25jZQ=="
    private func upgrade(_ adjust: (inout AccessPolicy.Request) -> Void = { _ in }) -> AccessPolicy.Request {
        var request = AccessPolicy.Request(method: "GET", webSocketKey: goodKey, webSocketVersion: "13")
        adjust(&request)
        return request
    }

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
