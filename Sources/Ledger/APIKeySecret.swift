import Crypto

/// API key secrets: `sdg_<key id>_<43 characters of randomness>`. The id lets a key be found
/// without comparing secrets; the stored SHA-256 is then compared in constant time.
public enum APIKeySecret {
    static func make() -> (id: String, secret: String) {
        let id = makeID(prefix: "k")
        return (id, "sdg_\(id)_\(randomText(bytes: 32))")
    }

    /// A key's (`k…`) or a team's (`t…`) id: the prefix and 8 random letters and digits. Never a
    /// `_`, which separates the parts of a secret.
    static func makeID(prefix: Character) -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String(prefix) + String((0..<8).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// The key id a secret names, if it has the shape of one.
    static func keyID(of secret: String) -> String? {
        let parts = secret.split(separator: "_", maxSplits: 2)
        guard parts.count == 3, parts[0] == "sdg", parts[1].count == 9, parts[2].count == 43 else { return nil }
        return String(parts[1])
    }

    public static func hash(_ secret: String) -> [UInt8] { Array(SHA256.hash(data: Array(secret.utf8))) }

    /// Equal in time that depends only on the length, not on where the first difference is.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// An admin token: `sdgadm_` and 43 characters of randomness.
    public static func makeAdminToken() -> String { "sdgadm_" + randomText(bytes: 32) }

    /// URL-safe base64 of random bytes, without padding (SystemRandomNumberGenerator is the OS's CSPRNG).
    private static func randomText(bytes count: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        var text = ""
        var buffer: UInt32 = 0, bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 6 {
                bits -= 6
                text.append(alphabet[Int(buffer >> UInt32(bits) & 0x3F)])
            }
        }
        if bits > 0 { text.append(alphabet[Int(buffer << UInt32(6 - bits) & 0x3F)]) }
        return text
    }
}
