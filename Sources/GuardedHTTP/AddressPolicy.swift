#if canImport(Glibc)
import Glibc
#endif

/// Which addresses the gateway may fetch from on a client's behalf. By default only public ones:
/// never loopback, private, shared (CGNAT), link-local (cloud metadata lives there), multicast,
/// broadcast, reserved or unspecified addresses, in IPv4 or IPv6 (an IPv6 form that embeds an IPv4
/// address judged by that address).
public struct AddressPolicy: Sendable {
    /// Allow every address (a local setup whose images live on a private network).
    public var allowPrivateAddresses: Bool
    /// Numeric addresses allowed although not public (one internal image store, say).
    public var alsoAllowed: Set<String>

    public init(allowPrivateAddresses: Bool = false, alsoAllowed: Set<String> = []) {
        self.allowPrivateAddresses = allowPrivateAddresses
        self.alsoAllowed = alsoAllowed
    }

    /// Whether a numeric address may be connected to; a name is never allowed (resolve it first).
    public func allows(_ address: String) -> Bool {
        if allowPrivateAddresses || alsoAllowed.contains(address) { return true }
        return Self.isPublic(address)
    }

    /// Whether `address` (numeric IPv4 or IPv6) is a public unicast address.
    public static func isPublic(_ address: String) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return isPublicIPv4(UInt32(bigEndian: v4.s_addr))
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        // Forms that carry an IPv4 address are judged by it: a 6to4 (2002::/16) or NAT64
        // (64:ff9b::/96) address reaches the IPv4 host it embeds, so 2002:7f00:1:: is loopback.
        if let embedded = embeddedIPv4(bytes) { return isPublicIPv4(embedded) }
        // Public IPv6 unicast is 2000::/3, minus documentation (2001:db8::/32) and Teredo
        // (2001::/32, whose IPv4 is hidden), which is where ORCHIDv2 (2001:20::/28) lies too.
        // Everything outside 2000::/3 (loopback, link-local, unique local, multicast, the
        // deprecated IPv4-compatible ::a.b.c.d, NAT64's local-use 64:ff9b:1::/48) is refused.
        guard bytes[0] & 0xE0 == 0x20 else { return false }
        if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 { return false }
        if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x00 && bytes[3] == 0x00 { return false }
        return true
    }

    /// The IPv4 address an IPv6 address stands for: IPv4-mapped (::ffff:a.b.c.d), 6to4
    /// (2002:aabb:ccdd::/48) and the well-known NAT64 prefix (64:ff9b::a.b.c.d).
    private static func embeddedIPv4(_ bytes: [UInt8]) -> UInt32? {
        func ipv4(at offset: Int) -> UInt32 {
            UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
        }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return ipv4(at: 12) }
        if bytes[0] == 0x20 && bytes[1] == 0x02 { return ipv4(at: 2) }
        if bytes[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] { return ipv4(at: 12) }
        return nil
    }

    private static func isPublicIPv4(_ address: UInt32) -> Bool {
        let blocked: [(UInt32, Int)] = [
            (0x0000_0000, 8),  // 0.0.0.0/8: this network, unspecified
            (0x0A00_0000, 8),  // 10.0.0.0/8: private
            (0x6440_0000, 10),  // 100.64.0.0/10: shared address space (CGNAT)
            (0x7F00_0000, 8),  // 127.0.0.0/8: loopback
            (0xA9FE_0000, 16),  // 169.254.0.0/16: link-local, cloud metadata
            (0xAC10_0000, 12),  // 172.16.0.0/12: private
            (0xC000_0000, 24),  // 192.0.0.0/24: IETF protocol assignments
            (0xC000_0200, 24),  // 192.0.2.0/24: documentation
            (0xC0A8_0000, 16),  // 192.168.0.0/16: private
            (0xC612_0000, 15),  // 198.18.0.0/15: benchmarking
            (0xC633_6400, 24),  // 198.51.100.0/24: documentation
            (0xCB00_7100, 24),  // 203.0.113.0/24: documentation
            (0xE000_0000, 4),  // 224.0.0.0/4: multicast
            (0xF000_0000, 4),  // 240.0.0.0/4: reserved, and 255.255.255.255 broadcast
        ]
        return !blocked.contains { network, prefix in address >> (32 - prefix) == network >> (32 - prefix) }
    }
}
