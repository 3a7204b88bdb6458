import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// The settle of a job that ended, on every store: its hold charged or released, its usage event
/// and its webhook, in one step, once; however many settle it (its runner, the upkeep of any
/// replica), whether its hold expired meanwhile or not.
@Suite("Job settlement contract")
struct JobSettlementContractTests {
    typealias Store = any Ledger & JobStore & WebhookStore

    func make(_ store: LedgerStore, clock: ManualClock) async throws -> (ledger: Store, key: String, path: String) {
        let (made, path) = try await store.make(clock: clock)
        let ledger = try #require(made as? Store)
        let (key, _) = try await ledger.createKey(NewKey(name: "member"))
        _ = try await ledger.adjust(.key(key.id), by: credits("1"), reason: "test")
        return (ledger, key.id, path)
    }

    /// A job of `key` that holds 0.008 until `holdFor` from now, and ended as `state`.
    func endedJob(_ ledger: Store, key: String, _ state: JobState, clock: ManualClock, holdFor: Int64 = 600_000) async throws -> JobRecord {
        let reserved = try await ledger.reserve(keyID: key, amount: credits("0.008"), expiresAt: clock.millisecondsNow + holdFor)
        guard case .held(let hold, _) = reserved else { throw LedgerError.insufficientBalance }
        let job = try await ledger.enqueueJob(
            NewJob(keyID: key, dialect: "modelslab", model: "sdxl", payload: [0x7B, 0x7D], hold: hold, cost: credits("0.008")))
        let claimed = try #require(try await ledger.claimJob(leaseUntil: clock.millisecondsNow + 60_000))
        #expect(claimed.id == job.id)
        #expect(
            try await ledger.finishJob(
                id: job.id, attempt: claimed.attempts, state: state, result: state == .completed ? [1] : nil,
                error: state == .failed ? "it failed" : nil))
        return try #require(try await ledger.job(id: job.id))
    }

    func settlement(of job: JobRecord, charge: Credits?, clock: ManualClock) -> JobSettlement {
        JobSettlement(
            jobID: job.id, hold: job.hold, charge: charge, releaseReason: "it failed",
            usage: UsageEvent(
                keyID: job.keyID, model: job.model, dialect: job.dialect, status: charge == nil ? 500 : 200, cost: charge ?? .zero,
                durationMilliseconds: 5, backend: "default", requestID: job.id, at: clock.millisecondsNow),
            webhook: NewWebhook(keyID: job.keyID, jobID: job.id, url: "https://hooks.example.com/sdgate", body: Array("{}".utf8)))
    }

    func usage(_ ledger: Store, _ key: String) async throws -> [UsageEvent] {
        try await ledger.usage(keyID: key, teamID: nil, from: 0, to: .max)
    }

    @Test(arguments: LedgerStore.available)
    func aCompletedJobIsChargedOnceWithOneUsageEventAndOneWebhook(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, key, _) = try await make(store, clock: clock)
        let job = try await endedJob(ledger, key: key, .completed, clock: clock)
        #expect(try await ledger.balance(of: .key(key)).held == credits("0.008"))
        #expect(try await ledger.unsettledJobIDs(limit: 10) == [job.id], "ended, not settled: as a gateway that died leaves it")

        #expect(try await ledger.settleJob(settlement(of: job, charge: credits("0.006"), clock: clock)))
        let charged = try await ledger.balance(of: .key(key))
        #expect(charged.balance == credits("0.994") && charged.held == .zero)
        #expect(try await usage(ledger, key).map(\.cost) == [credits("0.006")])
        #expect(try await ledger.webhookDeliveries(jobID: job.id).count == 1)
        #expect(try await ledger.unsettledJobIDs(limit: 10).isEmpty)

        // Settled again (the upkeep, or its runner, coming second): nothing changes.
        #expect(try await !ledger.settleJob(settlement(of: job, charge: credits("0.006"), clock: clock)))
        #expect(try await !ledger.settleJob(settlement(of: job, charge: nil, clock: clock)))
        #expect(try await ledger.balance(of: .key(key)) == charged)
        #expect(try await usage(ledger, key).count == 1)
        #expect(try await ledger.webhookDeliveries(jobID: job.id).count == 1)
        #expect(try await ledger.verify() == [])
    }

    @Test(arguments: LedgerStore.available)
    func aFailedJobsHoldIsReleasedOnce(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, key, _) = try await make(store, clock: clock)
        let job = try await endedJob(ledger, key: key, .failed, clock: clock)
        #expect(try await ledger.settleJob(settlement(of: job, charge: nil, clock: clock)))
        let released = try await ledger.balance(of: .key(key))
        #expect(released.balance == credits("1") && released.held == .zero)
        #expect(try await usage(ledger, key).map(\.status) == [500])
        #expect(try await ledger.webhookDeliveries(jobID: job.id).count == 1)

        #expect(try await !ledger.settleJob(settlement(of: job, charge: nil, clock: clock)))
        #expect(try await ledger.balance(of: .key(key)) == released)
        #expect(try await usage(ledger, key).count == 1)
        #expect(try await ledger.webhookDeliveries(jobID: job.id).count == 1)
        #expect(try await ledger.verify() == [])
    }

    /// A gateway that died for longer than the hold's lifetime: the reaper voided the hold first.
    @Test(arguments: LedgerStore.available)
    func aCompletedJobWhoseHoldExpiredIsChargedLateAndAFailedOneMovesNothing(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, key, _) = try await make(store, clock: clock)
        let completed = try await endedJob(ledger, key: key, .completed, clock: clock, holdFor: 1_000)
        let failed = try await endedJob(ledger, key: key, .failed, clock: clock, holdFor: 1_000)
        clock.advance(by: 2_000)
        #expect(try await ledger.expireHolds(now: clock.millisecondsNow) == 2)
        #expect(try await ledger.balance(of: .key(key)).spendable == credits("1"))

        #expect(try await ledger.settleJob(settlement(of: completed, charge: credits("0.008"), clock: clock)))
        #expect(try await ledger.settleJob(settlement(of: failed, charge: nil, clock: clock)))
        let after = try await ledger.balance(of: .key(key))
        #expect(after.balance == credits("0.992") && after.held == .zero, "charged once, late; the failed job's hold had nothing left")
        #expect(try await usage(ledger, key).map(\.status).sorted() == [200, 500])
        #expect(try await ledger.unsettledJobIDs(limit: 10).isEmpty)
        #expect(try await !ledger.settleJob(settlement(of: completed, charge: credits("0.008"), clock: clock)))
        #expect(try await ledger.balance(of: .key(key)) == after)
        #expect(try await ledger.verify() == [])
    }

    @Test(arguments: LedgerStore.available)
    func aJobThatHasNotEndedIsNotSettled(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, key, _) = try await make(store, clock: clock)
        let reserved = try await ledger.reserve(keyID: key, amount: credits("0.008"), expiresAt: clock.millisecondsNow + 600_000)
        guard case .held(let hold, _) = reserved else { throw LedgerError.insufficientBalance }
        let job = try await ledger.enqueueJob(
            NewJob(keyID: key, dialect: "modelslab", model: "sdxl", payload: [0x7B, 0x7D], hold: hold, cost: credits("0.008")))
        #expect(try await !ledger.settleJob(settlement(of: job, charge: credits("0.008"), clock: clock)), "queued")
        _ = try await ledger.claimJob(leaseUntil: clock.millisecondsNow + 60_000)
        #expect(try await !ledger.settleJob(settlement(of: job, charge: credits("0.008"), clock: clock)), "running")
        var unknown = settlement(of: job, charge: nil, clock: clock)
        unknown.jobID = "no-such-job"
        #expect(try await !ledger.settleJob(unknown))
        #expect(try await ledger.balance(of: .key(key)).held == credits("0.008"))
        #expect(try await usage(ledger, key).isEmpty)
        #expect(try await ledger.webhookDeliveries(jobID: job.id).isEmpty)
        #expect(try await ledger.unsettledJobIDs(limit: 10).isEmpty)
    }

    /// A charge the hold cannot cover is refused whole: the job stays unsettled, for a later try.
    @Test(arguments: LedgerStore.available)
    func aSettleThatFailsLeavesTheJobUnsettledAndNothingWritten(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, key, _) = try await make(store, clock: clock)
        let job = try await endedJob(ledger, key: key, .completed, clock: clock)
        await #expect(throws: LedgerError.chargeExceedsHold(job.hold)) {
            try await ledger.settleJob(settlement(of: job, charge: credits("0.009"), clock: clock))
        }
        #expect(try await ledger.unsettledJobIDs(limit: 10) == [job.id])
        #expect(try await ledger.balance(of: .key(key)).held == credits("0.008"))
        #expect(try await usage(ledger, key).isEmpty)
        #expect(try await ledger.webhookDeliveries(jobID: job.id).isEmpty)
        #expect(try await ledger.settleJob(settlement(of: job, charge: credits("0.008"), clock: clock)))
        #expect(try await ledger.verify() == [])
    }

    @Test(arguments: LedgerStore.available)
    func theUnsettledJobsComeEarliestEndedFirstUpToTheLimit(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, key, _) = try await make(store, clock: clock)
        var ended: [String] = []
        for _ in 0..<3 {
            ended.append(try await endedJob(ledger, key: key, .completed, clock: clock).id)
            clock.advance(by: 10)
        }
        #expect(try await ledger.unsettledJobIDs(limit: 10) == ended)
        #expect(try await ledger.unsettledJobIDs(limit: 2) == Array(ended.prefix(2)))
        #expect(try await ledger.unsettledJobIDs(limit: 0).isEmpty)
    }

    /// Runners and upkeeps of several replicas settling one job at once: one settle wins.
    @Test(arguments: LedgerStore.available)
    func concurrentSettlesOfOneJobChargeItOnce(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, key, path) = try await make(store, clock: clock)
        let other = try #require(try await store.open(path, clock: clock) as? Store)
        let job = try await endedJob(ledger, key: key, .completed, clock: clock)
        let charge = settlement(of: job, charge: credits("0.008"), clock: clock)
        let won = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                let replica = index.isMultiple(of: 2) ? ledger : other
                group.addTask { try await replica.settleJob(charge) }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(won == 1)
        let after = try await ledger.balance(of: .key(key))
        #expect(after.balance == credits("0.992") && after.held == .zero)
        #expect(try await usage(ledger, key).count == 1)
        #expect(try await ledger.webhookDeliveries(jobID: job.id).count == 1)
        #expect(try await ledger.verify() == [])
    }
}
