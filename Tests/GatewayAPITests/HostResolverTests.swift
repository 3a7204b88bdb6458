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
    /// A lookup that answers only once released (or after two minutes, so that a broken test ends);
    /// with `onlySlow`, only for names that start with "slow", the others at once.
    final class HangingLookup: Sendable {
        let onlySlow: Bool

        init(onlySlow: Bool = false) {
            self.onlySlow = onlySlow
        }

        private let gate = DispatchSemaphore(value: 0)
        /// How many lookups have begun.
        let begun = Atomic<Int>(0)

        var lookup: @Sendable (String) -> [String] {
            { [gate, onlySlow] host in
                if onlySlow && !host.hasPrefix("slow") { return ["127.0.0.1"] }
                self.begun.add(1, ordering: .relaxed)
                _ = gate.wait(timeout: .now() + .seconds(120))
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
        let far = ContinuousClock.now + .seconds(120)
        let waiting = (0..<2).map { _ in Task { await resolver.addresses(of: "slow.example", before: far) } }
        #expect(await eventually(timeout: .seconds(90)) { hanging.begun.load(ordering: .relaxed) == 2 })
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
        #expect(await eventually(timeout: .seconds(90)) { await resolver.addresses(of: "next.example", before: .now + .seconds(60)) != .busy })
    }

    /// One member's lookups take a few of the places only: names whose servers never answer, held
    /// until getaddrinfo gives up, long after each request was answered, took every place, and
    /// every other member's image URLs were refused as busy.
    @Test func oneOwnersLookupsTakeAFewPlacesOnly() async throws {
        let hanging = HangingLookup(onlySlow: true)
        let resolver = HostResolver(maxBlocked: 64, maxBlockedPerOwner: 2, lookup: hanging.lookup)
        let far = ContinuousClock.now + .seconds(120)
        let waiting = (0..<2).map { index in
            Task { await HostResolver.$owner.withValue("k-one") { await resolver.addresses(of: "slow\(index).example", before: far) } }
        }
        #expect(await eventually(timeout: .seconds(90)) { hanging.begun.load(ordering: .relaxed) == 2 })
        #expect(await HostResolver.$owner.withValue("k-one") { await resolver.addresses(of: "fast.example", before: far) } == .busy)
        #expect(
            await HostResolver.$owner.withValue("k-two") { await resolver.addresses(of: "fast.example", before: far) } == .addresses(["127.0.0.1"]))
        hanging.release(2)
        for lookup in waiting { #expect(await lookup.value == .addresses(["127.0.0.1"])) }
        #expect(
            await HostResolver.$owner.withValue("k-one") { await resolver.addresses(of: "fast.example", before: far) } == .addresses(["127.0.0.1"]))
    }

    /// Through admission, an image URL's lookup is its key's: the key's second slow name, past its
    /// share, is answered 503 at once.
    @Test func anImageURLsLookupCountsAgainstItsKey() async throws {
        let hanging = HangingLookup(onlySlow: true)
        let resolver = HostResolver(maxBlocked: 64, maxBlockedPerOwner: 1, lookup: hanging.lookup)
        let allowed = AddressPolicy(allowPrivateAddresses: true)
        let first = Task { try await ImageURLTests.answer("sdxl-img2img", image: "http://slow.example/cat.png", policy: allowed, resolver: resolver) }
        #expect(await eventually(timeout: .seconds(90)) { hanging.begun.load(ordering: .relaxed) == 1 })
        let (second, _) = try await ImageURLTests.answer("sdxl-img2img", image: "http://slow2.example/cat.png", policy: allowed, resolver: resolver)
        #expect(second.status.code == 503, "\(ImageURLTests.error(second))")
        #expect(ImageURLTests.error(second) == "image: the gateway is resolving too many hosts at once; retry shortly")
        hanging.release(1)
        _ = try await first.value
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
