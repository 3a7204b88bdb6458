#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The Host header field's value, checked where the parser refuses a missing or repeated one.
enum HostField {
    /// RFC 9110 §7.2: Host = uri-host [ ":" port ], the host an IP literal or a reg-name (RFC 3986
    /// §3.2.2; an IPv4 address and a DNS name are reg-names). The gateway builds the links in its
    /// answers from it: unchecked, a Host of 30 KB made one job's answer 240 KB. So the name is at
    /// most 255 bytes, as RFC 3986 asks of names, and the port a number from 1 to 65535.
    static func isValid(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { isValid($0[...]) }
    }

    private static func isValid(_ value: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        var host = value
        if let colon = host.lastIndex(of: ByteClass.colon), !host[colon...].contains(UInt8(ascii: "]")) {
            let port = host[(colon + 1)...]
            guard (1...5).contains(port.count), port.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                (1...65535).contains(port.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) })
            else { return false }
            host = host[..<colon]
        }
        guard host.count <= 255 else { return false }
        if host.first == UInt8(ascii: "[") {
            // IP-literal: an IPv6 address; IPvFuture has no use.
            guard host.count > 2, host.last == UInt8(ascii: "]") else { return false }
            var address = in6_addr()
            return inet_pton(AF_INET6, String(decoding: host.dropFirst().dropLast(), as: UTF8.self), &address) == 1
        }
        // reg-name = *( unreserved / pct-encoded / sub-delims )
        var index = host.startIndex
        while index < host.endIndex {
            if host[index] == UInt8(ascii: "%") {
                guard index + 2 < host.endIndex, ByteClass.hexValue(host[index + 1]) != nil, ByteClass.hexValue(host[index + 2]) != nil
                else { return false }
                index += 3
            } else {
                guard ByteClass.isRegName(host[index]) else { return false }
                index += 1
            }
        }
        return true
    }
}
