import Dispatch
import Foundation
import GuardedHTTP
import Synchronization
import TestSupport
import Testing

/// A member chooses the host name of an image or webhook URL, and with it the DNS servers that
/// answer for it, and how slowly: a lookup blocks a thread until they do.
@Suite("Host lookups")
struct HostResolverTests {
    /// A lookup that answers only once released (or after a minute, so that a broken test ends).
    final class HangingLookup: Sendable {
        private let gate = DispatchSemaphore(value: 0)
        /// How many lookups have begun.
        let begun = Atomic<Int>(0)

        var lookup: @Sendable (String) -> [String] {
            { [gate] _ in
                self.begun.add(1, ordering: .relaxed)
                _ = gate.wait(timeout: .now() + .seconds(60))
                return ["127.0.0.1"]
            }
        }

        func release(_ count: Int) {
            for _ in 0..<count { gate.signal() }
        }
    }

    /// The fetch's deadline covers the lookup: a name whose servers never answer once held the
    /// member's request for as long as getaddrinfo's own timeouts.
    @Test func aLookupThatHangsEndsTheFetchAtItsDeadline() async throws {
        let hanging = HangingLookup()
        let fetcher = GuardedFetcher(
            policy: AddressPolicy(allowPrivateAddresses: true), timeout: .milliseconds(300), resolver: HostResolver(lookup: hanging.lookup))
        let url = try #require(URL(string: "http://slow.example/cat.png"))
        await #expect(throws: GuardedFetcher.Refusal(message: "resolving the URL's host slow.example took too long")) {
            try await fetcher.get(url, maxBytes: 1 << 20)
        }
        hanging.release(1)
    }

    /// Only so many threads wait on DNS servers at once; past them a lookup is refused as busy (a
    /// 503 to its client), and a lookup that ends gives its place back.
    @Test func lookupsWaitingOnTheirServersAreBounded() async throws {
        let hanging = HangingLookup()
        let resolver = HostResolver(maxBlocked: 2, lookup: hanging.lookup)
        let far = ContinuousClock.now + .seconds(60)
        let waiting = (0..<2).map { _ in Task { await resolver.addresses(of: "slow.example", before: far) } }
        #expect(await eventually(timeout: .seconds(10)) { hanging.begun.load(ordering: .relaxed) == 2 })
        #expect(await resolver.addresses(of: "third.example", before: far) == .busy)
        hanging.release(2)
        for lookup in waiting { #expect(await lookup.value == .addresses(["127.0.0.1"])) }
        hanging.release(1)
        #expect(await resolver.addresses(of: "fourth.example", before: far) == .addresses(["127.0.0.1"]))
    }

    /// A lookup abandoned at its deadline keeps its place until its thread is free again.
    @Test func aLookupAbandonedAtItsDeadlineHoldsItsPlaceUntilItsThreadIsFree() async throws {
        let hanging = HangingLookup()
        let resolver = HostResolver(maxBlocked: 1, lookup: hanging.lookup)
        #expect(await resolver.addresses(of: "slow.example", before: .now + .milliseconds(100)) == .timedOut)
        #expect(await resolver.addresses(of: "next.example", before: .now + .seconds(60)) == .busy)
        hanging.release(2)
        #expect(await eventually(timeout: .seconds(10)) { await resolver.addresses(of: "next.example", before: .now + .seconds(60)) != .busy })
    }

    @Test func theSystemResolverAnswersNumericHostsInEveryFormAndRefusesUnknownNames() async {
        let far = ContinuousClock.now + .seconds(30)
        #expect(await HostResolver.system.addresses(of: "127.0.0.1", before: far) == .addresses(["127.0.0.1"]))
        #expect(await HostResolver.system.addresses(of: "[::1]", before: far) == .addresses(["::1"]))
        // Every numeric form getaddrinfo reads is written as the policy reads addresses.
        #expect(await HostResolver.system.addresses(of: "127.1", before: far) == .addresses(["127.0.0.1"]))
        #expect(await HostResolver.system.addresses(of: "2130706433", before: far) == .addresses(["127.0.0.1"]))
        #expect(await HostResolver.system.addresses(of: "no-such-host.invalid", before: far) == .addresses([]))
    }
}
