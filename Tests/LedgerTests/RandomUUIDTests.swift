import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

@Suite("Random UUIDs")
struct RandomUUIDTests {
    /// Foundation reads each back as the same UUID, of version 4 and RFC variant, and none repeats.
    @Test func theyAreVersionFourUUIDsInLowercaseAndDistinct() {
        let ids = (0..<10_000).map { _ in RandomUUID.make() }
        for id in ids.prefix(100) {
            let parsed = UUID(uuidString: id)
            #expect(parsed?.uuidString.lowercased() == id)
            #expect(parsed.map { $0.uuid.6 >> 4 } == 4, "version")
            #expect(parsed.map { $0.uuid.8 >> 6 } == 0b10, "variant")
        }
        #expect(Set(ids).count == ids.count)
    }

    /// Version 7: the time in the first 48 bits, so that a later id sorts after an earlier one (as
    /// text too), the rest random. A clock before 1970 or past 48 bits gives an id, not a trap.
    @Test func timeOrderedOnesCarryTheirMillisecondAndSortByIt() throws {
        let ids = (0..<1_000).map { RandomUUID.timeOrdered(milliseconds: 1_800_000_000_000 + Int64($0)) }
        #expect(ids == ids.sorted() && Set(ids).count == ids.count)
        let first = try #require(UUID(uuidString: ids[0]))
        #expect(first.uuidString.lowercased() == ids[0])
        #expect(first.uuid.6 >> 4 == 7, "version")
        #expect(first.uuid.8 >> 6 == 0b10, "variant")
        #expect(ids[0].hasPrefix("01a3185c-5000-7"), "1,800,000,000,000 ms is 0x01a3185c5000")
        let sameMillisecond = (0..<1_000).map { _ in RandomUUID.timeOrdered(milliseconds: 0) }
        #expect(Set(sameMillisecond).count == sameMillisecond.count)
        #expect(RandomUUID.timeOrdered(milliseconds: -1).hasPrefix("00000000-0000-7"))
        #expect(UUID(uuidString: RandomUUID.timeOrdered(milliseconds: .max)) != nil)
    }

    /// Every store names holds in the order they were made, so that the hold table's index grows
    /// at its end.
    @Test(arguments: LedgerStore.available)
    func holdsMadeLaterHaveGreaterIDs(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let (key, _) = try await ledger.createKey(NewKey(name: "ordered"))
        _ = try await ledger.adjust(.key(key.id), by: credits("100"), reason: "test")
        var holds: [String] = []
        for _ in 0..<20 {
            guard case .held(let hold, _) = try await ledger.reserve(keyID: key.id, amount: credits("1"), expiresAt: .max) else {
                Issue.record("refused")
                return
            }
            holds.append(hold.rawValue)
            clock.advance(by: 1)
        }
        #expect(holds == holds.sorted(), "\(holds)")
    }
}
