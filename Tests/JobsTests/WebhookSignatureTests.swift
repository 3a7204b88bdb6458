import Testing

@testable import Jobs

/// Standard Webhooks signatures against the specification's own example.
@Suite("Webhook signatures")
struct WebhookSignatureTests {
    @Test func theSpecificationsExampleSignsAsPublished() {
        // The Standard Webhooks test vector (standard-webhooks, libraries' shared tests).
        let signature = WebhookSignature.sign(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
            body: Array(#"{"test": 2432232314}"#.utf8), secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func aChangeToAnySignedPartChangesTheSignature() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", body = Array(#"{"status":"success"}"#.utf8)
        let base = WebhookSignature.sign(id: "msg_1", timestamp: 100, body: body, secret: secret)
        #expect(base != WebhookSignature.sign(id: "msg_2", timestamp: 100, body: body, secret: secret))
        #expect(base != WebhookSignature.sign(id: "msg_1", timestamp: 101, body: body, secret: secret))
        #expect(base != WebhookSignature.sign(id: "msg_1", timestamp: 100, body: body + [0x20], secret: secret))
        #expect(base != WebhookSignature.sign(id: "msg_1", timestamp: 100, body: body, secret: "whsec_" + "A".repeated(32)))
    }

    @Test func aMalformedSecretSignsNothing() {
        #expect(WebhookSignature.sign(id: "msg_1", timestamp: 1, body: [], secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == nil, "no whsec_ prefix")
        #expect(WebhookSignature.sign(id: "msg_1", timestamp: 1, body: [], secret: "whsec_not*base64") == nil)
        #expect(WebhookSignature.sign(id: "msg_1", timestamp: 1, body: [], secret: "whsec_") == nil)
    }
}

extension String {
    fileprivate func repeated(_ count: Int) -> String { String(repeating: self, count: count) }
}
