import GenerationCore
import Logging
import TestSupport
import Testing

@testable import Ledger

/// The PostgreSQL ledger reserves concurrent requests in one batch statement. A request that its
/// key or its team could not cover even alone is refused by the batch itself, with what the key
/// can spend: a member hammering an empty key must not cost a statement and a commit per refusal
/// while the others' batch waits. Only the requests whose answer depends on the batch's order,
/// or that the batch does not decide at all, run the single statement after it.
@Suite("PostgreSQL batched reserves")
struct PostgresBatchedReserveTests {
    @Test(.enabled(if: TestPostgres.url != nil))
    func refusalsThatNoOrderCouldAvoidAreDecidedByTheBatchWithWhatTheKeyCanSpend() async throws {
        let clock = ManualClock()
        let ledger = try #require(try await LedgerStore.postgres.make(clock: clock).0 as? PostgresLedger)
        func key(_ name: String, credits amount: String, teamID: String? = nil) async throws -> String {
            let (key, _) = try await ledger.createKey(NewKey(name: name, teamID: teamID))
            if amount != "0" { _ = try await ledger.adjust(.key(key.id), by: credits(amount), reason: "test") }
            return key.id
        }
        let daily = try PeriodBudget.checked(period: .day, amount: credits("3"), rolling: false).get()
        let lastDay = try PeriodBudget.checked(period: .day, amount: credits("3"), rolling: true).get()
        let (poorTeam, budgetedTeam) = (try await ledger.createTeam(name: "poor"), try await ledger.createTeam(name: "budgeted"))
        _ = try await ledger.adjust(.team(poorTeam.id), by: credits("2"), reason: "test")
        _ = try await ledger.adjust(.team(budgetedTeam.id), by: credits("100"), reason: "test")
        _ = try await ledger.setBudget(daily, of: .team(budgetedTeam.id))

        let empty = try await key("empty", credits: "0")
        let funded = try await key("funded", credits: "5")
        let budgeted = try await key("budgeted", credits: "10")
        _ = try await ledger.setBudget(daily, of: .key(budgeted))
        let poorMember = try await key("poor member", credits: "100", teamID: poorTeam.id)
        let budgetedMember = try await key("budgeted member", credits: "100", teamID: budgetedTeam.id)
        let rolling = try await key("rolling", credits: "100")
        _ = try await ledger.setBudget(lastDay, of: .key(rolling))

        let asked: [(key: String, amount: String)] = [
            (empty, "1"),
            (funded, "3"),
            (funded, "6"),  // more than the key has: refused whatever the order
            (funded, "3"),  // fits the key alone, not after the first: the single statement decides
            (budgeted, "4"),  // more than its day's budget
            (poorMember, "1"),
            (poorMember, "4"),  // more than the team has
            (budgetedMember, "5"),  // more than the team's day's budget
            (rolling, "1"),  // rolling budgets are the single statement's
        ]
        let requests = asked.map { key, amount in
            HoldRequest(keyID: key, amount: credits(amount).microCredits, holdID: RandomUUID.make(), expiresAt: .max)
        }
        let answers = try await PostgresLedger.reserve(
            requests, now: clock.millisecondsNow, client: ledger.client, logger: Logger(label: "test"), singles: ledger.reserveSingles
        ).map { try $0.get() }

        func spendable(_ key: String) async throws -> Int64 { try await ledger.balance(of: .key(key)).spendable.microCredits }
        #expect(answers[0] == .refused(spendable: 0))
        #expect(answers[1] == .held(available: credits("2").microCredits, teamAvailable: nil))
        #expect(answers[2] == .refused(spendable: try await spendable(funded)) && answers[2] == .refused(spendable: credits("2").microCredits))
        #expect(answers[3] == nil, "refused by the single statement after the batch")
        #expect(answers[4] == .refused(spendable: credits("3").microCredits))
        #expect(answers[5] == .held(available: credits("99").microCredits, teamAvailable: credits("1").microCredits))
        #expect(answers[6] == .refused(spendable: try await spendable(poorMember)) && answers[6] == .refused(spendable: credits("1").microCredits))
        #expect(answers[7] == .refused(spendable: credits("3").microCredits))
        #expect(answers[8] == nil, "the batch leaves rolling budgets alone, and the single statement holds nothing for one")
        #expect(ledger.reserveSingles.count == 2)
        #expect(try await ledger.verify().isEmpty)
    }
}
