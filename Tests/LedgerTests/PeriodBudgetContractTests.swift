import Foundation
import GenerationCore
import Synchronization
import TestSupport
import Testing

@testable import Ledger

/// Periodic budgets: checked and counted in the same atomic step as the balance, on every store,
/// across the turn of a period and across two ledgers on one database (two replicas).
@Suite("Ledger contract: periodic budgets")
struct PeriodBudgetContractTests {
    static let paris = try! PeriodBudget.checked(period: .day, amount: credits("10"), timeZone: "Europe/Paris").get()

    /// Moves `clock` to 40 milliseconds before the next midnight of `budget`'s time zone.
    static func moveToJustBeforeMidnight(_ clock: ManualClock, _ budget: PeriodBudget) -> Timestamp {
        let today = budget.periodStart(at: clock.millisecondsNow)
        // A day is 23 to 25 hours long: 30 hours on is always within the next one.
        let midnight = budget.periodStart(at: today + 30 * 3_600_000)
        clock.advance(by: midnight - 40 - clock.millisecondsNow)
        return midnight
    }

    /// 100 reserves of one credit race on two ledgers (as two replicas would); once at least 20
    /// are answered the clock passes midnight, while the others are in flight, and the last 50
    /// start only after it. `account` is what the budget caps: the key or its team.
    static func burstAcrossMidnight(
        _ ledgers: [any Ledger], keys: [String], clock: ManualClock, midnight: Timestamp
    ) async throws -> [Reservation] {
        let progress = BurstProgress()
        return try await withThrowingTaskGroup(of: Reservation?.self) { group in
            group.addTask {
                // Waits (bounded) for the condition: twenty answers in the old day.
                for _ in 0..<1_000_000 where progress.answered.load(ordering: .acquiring) < 20 { await Task.yield() }
                clock.advance(by: midnight + 10 - clock.millisecondsNow)
                progress.turned.store(true, ordering: .releasing)
                return nil
            }
            for index in 0..<100 {
                let ledger = ledgers[index % ledgers.count], key = keys[index % keys.count]
                group.addTask {
                    if index >= 50 { for _ in 0..<1_000_000 where !progress.turned.load(ordering: .acquiring) { await Task.yield() } }
                    let outcome = try await ledger.reserve(keyID: key, amount: credits("1"), expiresAt: .max)
                    progress.answered.add(1, ordering: .releasing)
                    return outcome
                }
            }
            return try await group.reduce(into: [Reservation]()) { if let outcome = $1 { $0.append(outcome) } }
        }
    }

    /// How far a burst has come: its answers so far, and whether the clock has passed midnight.
    final class BurstProgress: Sendable {
        let answered = Atomic<Int>(0)
        let turned = Atomic<Bool>(false)
    }

    static func holds(_ outcomes: [Reservation]) -> [HoldID] {
        outcomes.compactMap { if case .held(let hold, _) = $0 { hold } else { nil } }
    }

    @Test(arguments: LedgerStore.available)
    func aKeyGetsExactlyItsDailyBudgetInABurstAcrossMidnightOnTwoLedgers(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, path) = try await store.make(clock: clock)
        let replica = try await store.open(path, clock: clock)
        let (key, _) = try await ledger.createKey(NewKey(name: "daily"))
        _ = try await ledger.adjust(.key(key.id), by: credits("1000"), reason: "plenty")
        _ = try await ledger.setBudget(Self.paris, of: .key(key.id))
        let midnight = Self.moveToJustBeforeMidnight(clock, Self.paris)

        let holds = Self.holds(try await Self.burstAcrossMidnight([ledger, replica], keys: [key.id], clock: clock, midnight: midnight))
        #expect(holds.count == 20, "ten in the day before midnight, ten in the day after")
        var balance = try await ledger.balance(of: .key(key.id))
        #expect(balance.held == credits("20"))
        #expect(balance.period?.periodStart == midnight && balance.period?.spent == credits("10") && balance.spendable == .zero)

        // Every hold posted after midnight: the ten of the old day count in the old day.
        for (index, hold) in holds.enumerated() { _ = try await (index % 2 == 0 ? ledger : replica).post(hold, charge: credits("1")) }
        balance = try await replica.balance(of: .key(key.id))
        #expect(balance.balance == credits("980") && balance.period?.spent == credits("10"))
        #expect(try await ledger.reserve(keyID: key.id, amount: credits("1"), expiresAt: .max) == .insufficient(available: .zero))
        #expect(try await ledger.verify().isEmpty)

        // The next day: exactly ten more.
        clock.advance(by: Self.paris.periodStart(at: midnight + 30 * 3_600_000) - clock.millisecondsNow)
        let nextDay = try await withThrowingTaskGroup(of: Reservation.self) { group in
            for index in 0..<100 {
                group.addTask { try await (index % 2 == 0 ? ledger : replica).reserve(keyID: key.id, amount: credits("1"), expiresAt: .max) }
            }
            return try await group.reduce(into: [Reservation]()) { $0.append($1) }
        }
        #expect(Self.holds(nextDay).count == 10)
        #expect(try await ledger.balance(of: .key(key.id)).period?.left == .zero)
        #expect(try await ledger.verify().isEmpty)
    }

    @Test(arguments: LedgerStore.available)
    func aTeamGetsExactlyItsDailyBudgetInABurstAcrossMidnightOnTwoLedgers(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, path) = try await store.make(clock: clock)
        let replica = try await store.open(path, clock: clock)
        let team = try await ledger.createTeam(name: "night shift")
        _ = try await ledger.adjust(.team(team.id), by: credits("1000"), reason: "plenty")
        var keys: [String] = []
        for index in 0..<3 {
            let (key, _) = try await ledger.createKey(NewKey(name: "member \(index)", teamID: team.id))
            _ = try await ledger.adjust(.key(key.id), by: credits("100"), reason: "plenty")
            keys.append(key.id)
        }
        _ = try await replica.setBudget(Self.paris, of: .team(team.id))
        let midnight = Self.moveToJustBeforeMidnight(clock, Self.paris)

        let holds = Self.holds(try await Self.burstAcrossMidnight([ledger, replica], keys: keys, clock: clock, midnight: midnight))
        #expect(holds.count == 20)
        let teamBalance = try await ledger.balance(of: .team(team.id))
        #expect(teamBalance.held == credits("20") && teamBalance.period?.spent == credits("10"))
        let member = try await ledger.balance(of: .key(keys[0]))
        #expect(member.teamPeriod?.left == .zero && member.spendable == .zero, "a member can spend no more than its team's period allows")
        // Voids give the credits back to the period they were reserved in only: the new day's
        // voids free the new day's budget, the old day's free nothing now.
        for hold in holds { _ = try await ledger.void(hold, reason: "backend failed") }
        #expect(try await replica.balance(of: .team(team.id)).period?.spent == .zero)
        #expect(try await ledger.verify().isEmpty)

        clock.advance(by: Self.paris.periodStart(at: midnight + 30 * 3_600_000) - clock.millisecondsNow)
        var held = 0
        for index in 0..<30 {
            if case .held = try await (index % 2 == 0 ? ledger : replica).reserve(keyID: keys[index % 3], amount: credits("1"), expiresAt: .max) {
                held += 1
            }
        }
        #expect(held == 10)
        #expect(try await ledger.verify().isEmpty)
    }

    @Test(arguments: LedgerStore.available)
    func aBudgetIsSetChangedAndRemovedAndCountsVoidsExpiriesAndLateCharges(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let (key, _) = try await ledger.createKey(NewKey(name: "weekly"))
        _ = try await ledger.adjust(.key(key.id), by: credits("100"), reason: "plenty")
        let weekly = try PeriodBudget.checked(period: .week, amount: credits("5")).get()
        var balance = try await ledger.setBudget(weekly, of: .key(key.id))
        #expect(balance.period == PeriodSpending(budget: weekly, periodStart: weekly.periodStart(at: clock.millisecondsNow), spent: .zero))
        #expect(balance.spendable == credits("5"), "the smallest of the balance and the budget left")

        guard case .held(let posted, let available) = try await ledger.reserve(keyID: key.id, amount: credits("2"), expiresAt: .max) else {
            Issue.record("refused within the budget")
            return
        }
        #expect(available == credits("3"))
        balance = try await ledger.post(posted, charge: credits("1.5"))
        #expect(balance.period?.spent == credits("1.5"), "a post counts its charge, not its hold")
        guard case .held(let expiring, _) = try await ledger.reserve(keyID: key.id, amount: credits("3"), expiresAt: clock.millisecondsNow + 1000)
        else {
            Issue.record("refused within the budget")
            return
        }
        #expect(try await ledger.reserve(keyID: key.id, amount: credits("1"), expiresAt: .max) == .insufficient(available: credits("0.5")))
        clock.advance(by: 1000)
        #expect(try await ledger.expireHolds(now: clock.millisecondsNow) == 1)
        #expect(try await ledger.balance(of: .key(key.id)).period?.spent == credits("1.5"), "an expired hold gives its amount back")
        balance = try await ledger.post(expiring, charge: credits("3"))
        #expect(balance.period?.spent == credits("4.5"), "work that outlived its hold counts all the same")
        #expect(try await ledger.verify().isEmpty)

        // A larger amount in the same period keeps the count; another period counts anew.
        let larger = try PeriodBudget.checked(period: .week, amount: credits("6")).get()
        #expect(try await ledger.setBudget(larger, of: .key(key.id)).period?.left == credits("1.5"))
        let daily = try PeriodBudget.checked(period: .day, amount: credits("2"), timeZone: "America/New_York").get()
        balance = try await ledger.setBudget(daily, of: .key(key.id))
        #expect(balance.period?.spent == .zero && balance.period?.periodStart == daily.periodStart(at: clock.millisecondsNow))
        _ = try await ledger.reserve(keyID: key.id, amount: credits("2"), expiresAt: .max)
        #expect(try await ledger.verify().isEmpty)
        #expect(try await ledger.setBudget(nil, of: .key(key.id)).period == nil)
        #expect(try await ledger.balance(of: .key(key.id)).spendable == credits("93.5"))
        // Set again: the holds from before count in none of its periods, and verify agrees.
        _ = try await ledger.setBudget(daily, of: .key(key.id))
        #expect(try await ledger.balance(of: .key(key.id)).period?.spent == .zero)
        #expect(try await ledger.verify().isEmpty)

        await #expect(throws: LedgerError.unknownKey("k00000000")) { try await ledger.setBudget(daily, of: .key("k00000000")) }
        await #expect(throws: LedgerError.unknownTeam("t00000000")) { try await ledger.setBudget(daily, of: .team("t00000000")) }
    }

    @Test func budgetsOutsideTheirRangesAreRefusedBeforeAnyStore() {
        #expect(throws: BudgetProblem.self) { try PeriodBudget.checked(period: .day, amount: .zero).get() }
        #expect(throws: BudgetProblem.self) { try PeriodBudget.checked(period: .day, amount: credits("-1")).get() }
        #expect(throws: BudgetProblem.self) {
            try PeriodBudget.checked(period: .day, amount: Credits.maximum + Credits(microCredits: 1)).get()
        }
        for zone in ["Mars/Olympus", "CET+1", "GMT+1", "", "../etc/passwd", String(repeating: "A", count: 100)] {
            #expect(throws: BudgetProblem.self) { try PeriodBudget.checked(period: .day, amount: credits("1"), timeZone: zone).get() }
        }
        #expect((try? PeriodBudget.checked(period: .month, amount: Credits.maximum, timeZone: "Asia/Kolkata").get()) != nil)
    }

    @Test func periodsBeginAtTheirTimeZonesMidnightOnMondaysAndOnTheFirst() throws {
        // 2027-03-31 22:30 UTC is Thursday 1 April 00:30 in Paris (summer time).
        let now: Timestamp = 1_806_532_200_000
        let day = try PeriodBudget.checked(period: .day, amount: credits("1"), timeZone: "Europe/Paris").get()
        let week = try PeriodBudget.checked(period: .week, amount: credits("1"), timeZone: "Europe/Paris").get()
        let month = try PeriodBudget.checked(period: .month, amount: credits("1"), timeZone: "Europe/Paris").get()
        let utcMonth = try PeriodBudget.checked(period: .month, amount: credits("1")).get()
        func utc(_ text: String) -> Timestamp { Timestamp(ISO8601DateFormatter().date(from: text)!.timeIntervalSince1970 * 1000) }
        #expect(day.periodStart(at: now) == utc("2027-03-31T22:00:00Z"))
        #expect(week.periodStart(at: now) == utc("2027-03-28T22:00:00Z"))
        #expect(month.periodStart(at: now) == utc("2027-03-31T22:00:00Z"))
        #expect(utcMonth.periodStart(at: now) == utc("2027-03-01T00:00:00Z"))
    }
}

@Suite("Ledger verification of periodic budgets (SQLite)")
struct SQLitePeriodBudgetVerificationTests {
    @Test func verifyFindsAPeriodCountThatItsHoldsDoNotExplain() async throws {
        let (ledger, path) = try await LedgerStore.sqlite.make(clock: ManualClock())
        let (key, _) = try await ledger.createKey(NewKey(name: "audited"))
        _ = try await ledger.adjust(.key(key.id), by: credits("5"), reason: "budget")
        _ = try await ledger.setBudget(PeriodBudgetContractTests.paris, of: .key(key.id))
        _ = try await ledger.reserve(keyID: key.id, amount: credits("2"), expiresAt: .max)
        #expect(try await ledger.verify().isEmpty)
        let edit = try await Command.run("sqlite3", [path, "UPDATE balance SET period_spent = period_spent - 1000000"])
        #expect(edit.status == 0, "\(edit.errors)")
        #expect(try await ledger.verify() == ["\(key.id): the period's budget counts 1 spent but its holds add up to 2"])
    }
}

/// Rolling windows: at most the amount within the last 24 hours (7 days, 30 days) before each
/// reserve, summed from the holds under the same locks as the reserve.
@Suite("Ledger contract: rolling budgets")
struct RollingBudgetContractTests {
    static let lastDay = try! PeriodBudget.checked(period: .day, amount: credits("10"), rolling: true).get()

    static func burst(_ ledgers: [any Ledger], keys: [String], count: Int = 100) async throws -> [HoldID] {
        let outcomes = try await withThrowingTaskGroup(of: Reservation.self) { group in
            for index in 0..<count {
                let ledger = ledgers[index % ledgers.count], key = keys[index % keys.count]
                group.addTask { try await ledger.reserve(keyID: key, amount: credits("1"), expiresAt: .max) }
            }
            return try await group.reduce(into: [Reservation]()) { $0.append($1) }
        }
        return PeriodBudgetContractTests.holds(outcomes)
    }

    @Test(arguments: LedgerStore.available)
    func aKeyGetsItsAmountPerRollingDayOnTwoLedgers(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, path) = try await store.make(clock: clock)
        let replica = try await store.open(path, clock: clock)
        let (key, _) = try await ledger.createKey(NewKey(name: "rolling"))
        _ = try await ledger.adjust(.key(key.id), by: credits("1000"), reason: "plenty")
        let set = try await replica.setBudget(Self.lastDay, of: .key(key.id))
        #expect(set.period?.budget.rolling == true && set.period?.periodStart == clock.millisecondsNow - 86_400_000)

        let first = try await Self.burst([ledger, replica], keys: [key.id])
        #expect(first.count == 10)
        for hold in first.prefix(4) { _ = try await ledger.post(hold, charge: credits("1")) }
        for hold in first.dropFirst(4).prefix(2) { _ = try await replica.post(hold, charge: credits("0.5")) }
        #expect(try await ledger.balance(of: .key(key.id)).period?.spent == credits("9"), "4 charged, 1 by halves, 4 still held")
        // A void gives its amount back to the window at once; 23 hours on, the window still holds the rest.
        _ = try await ledger.void(first[9], reason: "backend failed")
        clock.advance(by: 23 * 3_600_000)
        #expect(try await Self.burst([ledger, replica], keys: [key.id]).count == 2)
        #expect(try await ledger.verify().isEmpty)
        // A day after the first burst, its holds leave the window: the two from the 23rd hour stay in it.
        clock.advance(by: 3_600_000 + 1)
        #expect(try await Self.burst([ledger, replica], keys: [key.id]).count == 8)
        let balance = try await replica.balance(of: .key(key.id))
        #expect(balance.period?.spent == credits("10") && balance.spendable == .zero)
        #expect(try await ledger.verify().isEmpty)
    }

    @Test(arguments: LedgerStore.available)
    func aTeamsRollingWeekCapsItsMembersWithTheirOwnCalendarBudgets(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, path) = try await store.make(clock: clock)
        let replica = try await store.open(path, clock: clock)
        let team = try await ledger.createTeam(name: "rolling team")
        _ = try await ledger.adjust(.team(team.id), by: credits("1000"), reason: "plenty")
        _ = try await ledger.setBudget(try PeriodBudget.checked(period: .week, amount: credits("12"), rolling: true).get(), of: .team(team.id))
        var keys: [String] = []
        for index in 0..<2 {
            let (key, _) = try await ledger.createKey(NewKey(name: "member \(index)", teamID: team.id))
            _ = try await ledger.adjust(.key(key.id), by: credits("100"), reason: "plenty")
            // Each member also has 8 a calendar day: the team's week is the tighter cap together.
            _ = try await ledger.setBudget(try PeriodBudget.checked(period: .day, amount: credits("8")).get(), of: .key(key.id))
            keys.append(key.id)
        }
        #expect(try await Self.burst([ledger, replica], keys: keys, count: 60).count == 12)
        for key in keys {
            let balance = try await ledger.balance(of: .key(key))
            #expect(balance.teamPeriod?.left == .zero && balance.spendable == .zero && (balance.period?.spent ?? .zero) <= credits("8"))
        }
        #expect(try await ledger.verify().isEmpty)
        clock.advance(by: 7 * 86_400_000 + 1)
        #expect(try await Self.burst([ledger, replica], keys: keys, count: 60).count == 12)
        #expect(try await ledger.verify().isEmpty)
    }
}
