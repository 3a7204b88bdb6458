import Synchronization
import TestSupport
import Testing

@testable import GenerationCore

/// The one task that renews the holds of every generation at work. Each test has a schedule of its
/// own, so that no other test's holds wake its sweeper, and waits for renewals as they happen.
@Suite("HoldRenewals")
struct HoldRenewalsTests {
    /// Counts a hold's renewals; `open` says what the ledger answers.
    final class Hold: Sendable {
        private let count = Mutex(0)
        let open: Bool

        init(open: Bool = true) {
            self.open = open
        }

        var renewals: Int { count.withLock { $0 } }

        func renew() -> Bool {
            count.withLock { $0 += 1 }
            return open
        }
    }

    @Test func aHoldIsRenewedEveryIntervalUntilItsGenerationEnds() async {
        let schedule = HoldRenewals()
        let hold = Hold(), witness = Hold()
        let id = schedule.add(every: .milliseconds(20)) { hold.renew() }
        #expect(await eventually { hold.renewals >= 3 })
        schedule.remove(id)
        let renewedBeforeTheEnd = hold.renewals
        // Another hold renewed five times at the same interval: the first had time to be renewed
        // again, had it still been on the schedule (one renewal may have been under way).
        let witnessID = schedule.add(every: .milliseconds(20)) { witness.renew() }
        defer { schedule.remove(witnessID) }
        #expect(await eventually { witness.renewals >= 5 })
        #expect(hold.renewals <= renewedBeforeTheEnd + 1)
    }

    /// The sweeper sleeps until the earliest hold is due: a hold due sooner, added while it
    /// sleeps, wakes a sweeper of its own instead of waiting an hour.
    @Test func aHoldDueBeforeTheSweeperWakesIsRenewedOnTime() async {
        let schedule = HoldRenewals()
        let slow = Hold(), fast = Hold()
        let slowID = schedule.add(every: .seconds(3600)) { slow.renew() }
        defer { schedule.remove(slowID) }
        #expect(await eventually { schedule.sweeperWakesAt != nil })
        let fastID = schedule.add(every: .milliseconds(20)) { fast.renew() }
        defer { schedule.remove(fastID) }
        #expect(await eventually { fast.renewals >= 3 })
        #expect(slow.renewals == 0)
    }

    /// A ledger that says the hold is no longer open (it was settled, or it expired) ends its
    /// renewals, though its generation goes on.
    @Test func aHoldNoLongerOpenIsNotRenewedAgain() async {
        let schedule = HoldRenewals()
        let closed = Hold(open: false), witness = Hold()
        let id = schedule.add(every: .milliseconds(20)) { closed.renew() }
        defer { schedule.remove(id) }
        #expect(await eventually { closed.renewals == 1 })
        let witnessID = schedule.add(every: .milliseconds(20)) { witness.renew() }
        defer { schedule.remove(witnessID) }
        #expect(await eventually { witness.renewals >= 5 })
        #expect(closed.renewals == 1)
    }
}
