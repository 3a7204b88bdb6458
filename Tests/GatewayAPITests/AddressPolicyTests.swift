import GuardedHTTP
import Testing

@Suite("Address policy")
struct AddressPolicyTests {
    @Test(arguments: [
        "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "240.0.0.1", "192.0.2.10", "198.18.0.1",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "2001:db8::1", "not an address", "localhost",
        // 6to4 and NAT64 forms of loopback, private and metadata addresses: once judged public
        // because they lie in 2000::/3 (6to4) or were not looked into.
        "2002:7f00:1::1", "2002:a00:1::", "2002:c0a8:101::1", "2002:a9fe:a9fe::", "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::808:808", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "::127.0.0.1",
    ])
    func refusedByDefault(address: String) {
        #expect(!AddressPolicy().allows(address))
    }

    @Test(arguments: [
        "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "203.0.114.1",
        "2606:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8",
        "2002:808:808::1", "64:ff9b::8.8.8.8",
    ])
    func publicAddressesAreAllowed(address: String) {
        #expect(AddressPolicy().allows(address))
    }

    @Test func theSwitchAndTheListAllowPrivateAddresses() {
        #expect(AddressPolicy(allowPrivateAddresses: true).allows("127.0.0.1"))
        #expect(AddressPolicy(alsoAllowed: ["10.0.0.5"]).allows("10.0.0.5"))
        #expect(!AddressPolicy(alsoAllowed: ["10.0.0.5"]).allows("10.0.0.6"))
    }
}
