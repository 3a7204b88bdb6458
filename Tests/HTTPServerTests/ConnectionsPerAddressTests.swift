import Testing

@testable import HTTPServer

/// The limit of connections per client counts a client as the network it controls: an IPv6 host
/// holds a whole /64, and an IPv4 client of a dual-stack listener arrives as an IPv4-mapped address.
@Suite("Connections per address")
struct ConnectionsPerAddressTests {
    static func peer(_ host: String) throws -> SocketAddress {
        try #require(SocketAddress(host: host, port: 40000))
    }

    @Test func everyAddressOfOneIPv6Slash64CountsAsOneClient() throws {
        let connections = ConnectionsPerAddress(limit: 2)
        #expect(connections.open(try Self.peer("2001:db8:1:2::1")))
        #expect(connections.open(try Self.peer("2001:db8:1:2:ffff:ffff:ffff:fffe")))
        #expect(!connections.open(try Self.peer("2001:db8:1:2:abcd::7")))
        // The next /64 is another client.
        #expect(connections.open(try Self.peer("2001:db8:1:3::1")))
        // A connection of the first /64 closes, from whichever of its addresses: one slot is free again.
        connections.close(try Self.peer("2001:db8:1:2::1"))
        #expect(connections.open(try Self.peer("2001:db8:1:2::99")))
        #expect(!connections.open(try Self.peer("2001:db8:1:2::100")))
    }

    @Test func anIPv4MappedAddressCountsAsItsIPv4Address() throws {
        let connections = ConnectionsPerAddress(limit: 2)
        #expect(connections.open(try Self.peer("192.0.2.7")))
        #expect(connections.open(try Self.peer("::ffff:192.0.2.7")))
        #expect(!connections.open(try Self.peer("192.0.2.7")))
        #expect(!connections.open(try Self.peer("::ffff:192.0.2.7")))
        // Its neighbour, mapped or not, is another client.
        #expect(connections.open(try Self.peer("::ffff:192.0.2.8")))
        #expect(connections.open(try Self.peer("192.0.2.8")))
    }

    @Test func aClientIsNamedByItsNetwork() throws {
        #expect(try Self.peer("2001:db8:0:a:1:2:3:4").clientGroup == "2001:db8:0:a::/64")
        #expect(try Self.peer("::1").clientGroup == "0:0:0:0::/64")
        #expect(try Self.peer("::ffff:10.1.2.3").clientGroup == "10.1.2.3")
        #expect(try Self.peer("10.1.2.3").clientGroup == "10.1.2.3")
    }
}
