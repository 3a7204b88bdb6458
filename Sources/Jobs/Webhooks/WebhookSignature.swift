import Crypto
import Foundation

/// Standard Webhooks signatures (standardwebhooks.com): HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>`,
/// keyed with the bytes of the secret (the base64 after `whsec_`), sent as `webhook-signature: v1,<base64>`.
public enum WebhookSignature {
    /// The `webhook-signature` value, or nil for a secret that is not `whsec_` and base64.
    public static func sign(id: String, timestamp: Int64, body: [UInt8], secret: String) -> String? {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))), !key.isEmpty else { return nil }
        let message = Array("\(id).\(timestamp).".utf8) + body
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return "v1," + Data(code).base64EncodedString()
    }
}
