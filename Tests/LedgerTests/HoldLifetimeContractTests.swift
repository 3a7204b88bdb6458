import Foundation
import GenerationCore
import Logging
import TestSupport
import Testing

@testable import Ledger

/// Holds under work in progress, on both stores: a renewed hold outlives its first expiry, a hold
/// that expired under work that completed is still charged (into debt if need be), and an
/// `Idempotency-Key` claim ends with the hold that backs it.
@Suite("Hold lifetime contract")
struct HoldLifetimeContractTests {
    func fundedKey(_ ledger: any Ledger, _ amount: String, team: String? = nil) async throws -> String {
        let (key, _) = try await ledger.createKey(NewKey(name: "member", teamID: team))
        _ = try await ledger.adjust(.key(key.id), by: credits(amount), reason: "welcome")
        return key.id
    }

    func hold(_ ledger: any Ledger, _ keyID: String, _ amount: String, until expiresAt: Timestamp) async throws -> HoldID {
        guard case .held(let hold, _) = try await ledger.reserve(keyID: keyID, amount: credits(amount), expiresAt: expiresAt) else {
            throw LedgerError.insufficientBalance
        }
        return hold
    }

    @Test(arguments: LedgerStore.available)
    func aRenewedHoldOutlivesItsFirstExpiryAndASettledOneIsNotRenewed(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let key = try await fundedKey(ledger, "1")
        let held = try await hold(ledger, key, "0.5", until: clock.millisecondsNow + 2_000)
        #expect(try await ledger.renewHold(held, until: clock.millisecondsNow + 10_000))
        // A renewal never shortens a hold.
        #expect(try await ledger.renewHold(held, until: clock.millisecondsNow + 1_000))
        clock.advance(by: 5_000)
        #expect(try await ledger.expireHolds(now: clock.millisecondsNow) == 0, "renewed past its first expiry")
        _ = try await ledger.post(held, charge: credits("0.5"))
        #expect(try await !ledger.renewHold(held, until: clock.millisecondsNow + 10_000), "a posted hold is not open")
        #expect(try await !ledger.renewHold(HoldID("no-such-hold"), until: clock.millisecondsNow + 10_000))
        #expect(try await ledger.verify() == [])
    }

    @Test(arguments: LedgerStore.available)
    func aHoldThatExpiredUnderWorkIsStillChargedIntoDebtOnce(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let team = try await ledger.createTeam(name: "studio")
        _ = try await ledger.adjust(.team(team.id), by: credits("10"), reason: "budget")
        let key = try await fundedKey(ledger, "1", team: team.id)
        let late = try await hold(ledger, key, "1", until: clock.millisecondsNow + 2_000)
        clock.advance(by: 3_000)
        #expect(try await ledger.expireHolds(now: clock.millisecondsNow) == 1)
        // Meanwhile the credits came back and were held again by another request.
        let other = try await hold(ledger, key, "1", until: clock.millisecondsNow + 60_000)

        let charged = try await ledger.post(late, charge: credits("0.75"))
        #expect(charged.balance == credits("0.25") && charged.held == credits("1"))
        #expect(charged.available == credits("-0.75"), "the debt shows as a negative available balance")
        #expect(try await ledger.balance(of: .team(team.id)) == Balance(balance: credits("9.25"), held: credits("1")))
        await #expect(throws: LedgerError.holdSettled(late)) { try await ledger.post(late, charge: credits("0.75")) }
        // In debt, the key can hold nothing more.
        guard case .insufficient = try await ledger.reserve(keyID: key, amount: credits("0.01"), expiresAt: clock.millisecondsNow + 60_000) else {
            Issue.record("a key in debt could hold credits")
            return
        }
        _ = try await ledger.void(other, reason: "failed")
        #expect(try await ledger.verify() == [])
    }

    /// A key (and its team) left in debt by a late charge: any price is refused, the largest
    /// amount too (a catalog's extreme price comes out as it, and the subtraction from a debt once
    /// trapped); a top-up smaller than the debt pays part of it (it was refused as "past the
    /// maximum"); `verify` finds the ledger sound (it reported the debt as a fault).
    @Test(arguments: LedgerStore.available)
    func aKeyInDebtIsRefusedAnyPricePaysPartOfItAndVerifies(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let team = try await ledger.createTeam(name: "studio")
        _ = try await ledger.adjust(.team(team.id), by: credits("1"), reason: "budget")
        let key = try await fundedKey(ledger, "1", team: team.id)
        let late = try await hold(ledger, key, "1", until: clock.millisecondsNow + 2_000)
        clock.advance(by: 3_000)
        #expect(try await ledger.expireHolds(now: clock.millisecondsNow) == 1)
        _ = try await ledger.post(try await hold(ledger, key, "1", until: clock.millisecondsNow + 60_000), charge: credits("1"))
        let debt = try await ledger.post(late, charge: credits("0.75"))
        #expect(debt.balance == credits("-0.75") && debt.held == .zero)
        #expect(try await ledger.balance(of: .team(team.id)) == Balance(balance: credits("-0.75"), held: .zero))
        #expect(try await ledger.verify() == [], "a debt from a late charge is no fault")

        for price in [Credits(microCredits: .max), Credits.maximum, credits("0.01")] {
            guard case .insufficient = try await ledger.reserve(keyID: key, amount: price, expiresAt: clock.millisecondsNow + 60_000) else {
                Issue.record("a key in debt could hold \(price)")
                return
            }
        }
        #expect(try await ledger.adjust(.key(key), by: credits("0.25"), reason: "part of the debt").balance == credits("-0.5"))
        #expect(try await ledger.adjust(.team(team.id), by: credits("0.5"), reason: "part").balance == credits("-0.25"))
        await #expect(throws: LedgerError.insufficientBalance) { try await ledger.adjust(.key(key), by: credits("-0.1"), reason: "deduction") }
        #expect(try await ledger.verify() == [])
    }

    @Test(arguments: LedgerStore.available)
    func aVoidedHoldIsNeverChargedLate(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let key = try await fundedKey(ledger, "1")
        let voided = try await hold(ledger, key, "1", until: clock.millisecondsNow + 2_000)
        _ = try await ledger.void(voided, reason: "the upstream failed")
        await #expect(throws: LedgerError.holdSettled(voided)) { try await ledger.post(voided, charge: credits("1")) }
        // A late charge is still bounded by what was held.
        let expired = try await hold(ledger, key, "0.5", until: clock.millisecondsNow + 2_000)
        clock.advance(by: 3_000)
        #expect(try await ledger.expireHolds(now: clock.millisecondsNow) == 1)
        await #expect(throws: LedgerError.chargeExceedsHold(expired)) { try await ledger.post(expired, charge: credits("0.6")) }
        #expect(try await ledger.balance(of: .key(key)) == Balance(balance: credits("1"), held: .zero))
        #expect(try await ledger.verify() == [])
    }

    @Test(arguments: LedgerStore.available)
    func anIdempotencyClaimEndsWithItsHold(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let key = try await fundedKey(ledger, "1")
        let print: [UInt8] = [1, 2, 3]
        func claim() async throws -> IdempotencyClaim {
            try await ledger.claimIdempotencyKey(
                keyID: key, key: "retry-me", fingerprint: print, at: clock.millisecondsNow, runningUntil: clock.millisecondsNow + 2_000,
                claim: "first")
        }
        #expect(try await claim() == .claimed)
        #expect(try await claim() == .inProgress)
        let held = try await hold(ledger, key, "0.5", until: clock.millisecondsNow + 2_000)
        try await ledger.backIdempotencyKey(keyID: key, key: "retry-me", claim: "first", with: held)
        // Past the claim's own deadline, the open hold keeps it running.
        clock.advance(by: 1_500)
        #expect(try await ledger.renewHold(held, until: clock.millisecondsNow + 2_000))
        clock.advance(by: 1_500)
        #expect(try await claim() == .inProgress)
        // The gateway died: nothing renews the hold, it expires, and the claim with it.
        clock.advance(by: 1_000)
        #expect(try await ledger.expireHolds(now: clock.millisecondsNow) == 1)
        #expect(try await claim() == .claimed)
        #expect(try await claim() == .inProgress)
    }

    @Test(arguments: LedgerStore.available)
    func aClaimWithoutAHoldLapsesAtItsDeadlineAndAChargedOneDoesNot(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let key = try await fundedKey(ledger, "1")
        func claim(_ idempotencyKey: String, _ print: [UInt8] = [7]) async throws -> IdempotencyClaim {
            try await ledger.claimIdempotencyKey(
                keyID: key, key: idempotencyKey, fingerprint: print, at: clock.millisecondsNow, runningUntil: clock.millisecondsNow + 2_000,
                claim: "only")
        }
        #expect(try await claim("never-held") == .claimed)
        #expect(try await claim("charged") == .claimed)
        let held = try await hold(ledger, key, "0.5", until: clock.millisecondsNow + 2_000)
        try await ledger.backIdempotencyKey(keyID: key, key: "charged", claim: "only", with: held)
        _ = try await ledger.post(held, charge: credits("0.5"))
        clock.advance(by: 2_500)
        // A claim that died before it held anything is free again, even for another request.
        #expect(try await claim("never-held", [8]) == .claimed)
        // A charged request's answer is on its way: a repeat must not run it a second time.
        #expect(try await claim("charged") == .inProgress)
        try await ledger.completeIdempotencyKey(keyID: key, key: "charged", claim: "only", answer: StoredAnswer(status: 200, headers: [], body: [42]))
        #expect(try await claim("charged") == .completed(StoredAnswer(status: 200, headers: [], body: [42])))
    }

    /// A request whose claim lapsed (its hold voided: it failed) and was taken over by a repeat can
    /// no longer release, back or complete it: each acts on its own claim only. Its release once
    /// deleted the repeat's running claim, and a third repeat then ran beside the second.
    @Test(arguments: LedgerStore.available)
    func aClaimTakenOverCannotBeEndedByTheRequestThatLostIt(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let key = try await fundedKey(ledger, "1")
        func claim(_ name: String) async throws -> IdempotencyClaim {
            try await ledger.claimIdempotencyKey(
                keyID: key, key: "twice", fingerprint: [9], at: clock.millisecondsNow, runningUntil: clock.millisecondsNow + 60_000,
                claim: name)
        }
        #expect(try await claim("first") == .claimed)
        let first = try await hold(ledger, key, "0.5", until: clock.millisecondsNow + 60_000)
        try await ledger.backIdempotencyKey(keyID: key, key: "twice", claim: "first", with: first)
        _ = try await ledger.void(first, reason: "failed")
        #expect(try await claim("second") == .claimed, "the first claim lapsed with its hold")

        try await ledger.releaseIdempotencyKey(keyID: key, key: "twice", claim: "first")
        try await ledger.completeIdempotencyKey(keyID: key, key: "twice", claim: "first", answer: StoredAnswer(status: 200, headers: [], body: [1]))
        try await ledger.backIdempotencyKey(keyID: key, key: "twice", claim: "first", with: first)
        #expect(try await claim("third") == .inProgress, "still the second claim's")

        let second = try await hold(ledger, key, "0.5", until: clock.millisecondsNow + 60_000)
        try await ledger.backIdempotencyKey(keyID: key, key: "twice", claim: "second", with: second)
        _ = try await ledger.post(second, charge: credits("0.5"))
        try await ledger.completeIdempotencyKey(keyID: key, key: "twice", claim: "second", answer: StoredAnswer(status: 200, headers: [], body: [2]))
        #expect(try await claim("third") == .completed(StoredAnswer(status: 200, headers: [], body: [2])))
    }

    /// PostgreSQL's reaper first looks for overdue holds, then expires them in a second statement;
    /// a renewal committed between the two keeps its hold open. The expiry did not look at
    /// `expires_at` again, and expired a hold renewed a moment before under its running work.
    @Test(.enabled(if: TestPostgres.url != nil))
    func aHoldRenewedAfterTheReapersLookIsNotExpired() async throws {
        let clock = ManualClock()
        let ledger = try #require(try await LedgerStore.postgres.make(clock: clock).0 as? PostgresLedger)
        let key = try await fundedKey(ledger, "1")
        let held = try await hold(ledger, key, "0.5", until: clock.millisecondsNow + 1_000)
        clock.advance(by: 1_000)
        // The reaper's look found it overdue, then its renewal committed, then the expiry ran.
        let overdue = SettleRequest(holdID: held.rawValue, state: "expired", charge: 0, reason: "expired")
        #expect(try await ledger.renewHold(held, until: clock.millisecondsNow + 10_000))
        var expired = 0
        let rows = try await ledger.client.execute(
            BatchSettleStatement(requests: [overdue], now: clock.millisecondsNow), logger: Logger(label: "test"))
        for try await _ in rows { expired += 1 }
        #expect(expired == 0, "renewed since the look")
        #expect(try await ledger.openHolds().count == 1)

        clock.advance(by: 10_000)
        #expect(try await ledger.expireHolds(now: clock.millisecondsNow) == 1, "overdue again: expired")
        #expect(try await ledger.verify() == [])
    }
}
