import Foundation
import GenerationCore
import Logging
import TestSupport
import Testing

@testable import Ledger

/// A key's cancel of its job, on every store: a queued job fails at once and is never claimed, a
/// running one is marked for its runner and is never run again, an ended one is left as it was;
/// and a cancel racing the claims leaves each job either removed or run, never both.
@Suite("Job cancel contract")
struct JobCancelContractTests {
    func makeStore(_ store: LedgerStore, clock: ManualClock) async throws -> any JobStore {
        try #require(try await store.make(clock: clock).0 as? any JobStore)
    }

    func newJob(_ model: String, key: String = "kaaaaaaaa") -> NewJob {
        NewJob(
            keyID: key, dialect: "segmind", model: model, payload: Array(#"{"prompt":"a lighthouse"}"#.utf8), hold: HoldID("h-\(model)"),
            cost: credits("0.008"))
    }

    @Test(arguments: LedgerStore.available)
    func aQueuedJobIsRemovedARunningOneMarkedAndAnEndedOneLeft(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try await makeStore(store, clock: clock)
        let running = try await jobs.enqueueJob(newJob("first"))
        clock.advance(by: 10)
        let queued = try await jobs.enqueueJob(newJob("second"))
        let claimed = try #require(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 60_000))
        #expect(claimed.id == running.id)

        clock.advance(by: 5)
        guard case .removed(let removed) = try await jobs.cancelJob(id: queued.id) else { Issue.record("not removed"); return }
        #expect(removed.state == .failed && removed.error == JobRecord.cancelledError)
        #expect(removed.cancelledAt == clock.millisecondsNow && removed.finishedAt == clock.millisecondsNow)
        #expect(try await jobs.job(id: queued.id) == removed)
        #expect(try await jobs.queuedJobCount() == 0)
        #expect(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 60_000) == nil, "a removed job is never claimed")
        #expect(try await jobs.cancelJob(id: queued.id) == .unchanged(removed), "cancelled once")

        guard case .stopping(let stopping) = try await jobs.cancelJob(id: running.id) else { Issue.record("not stopping"); return }
        #expect(stopping.state == .processing && stopping.cancelledAt == clock.millisecondsNow)
        #expect(try await jobs.cancelJob(id: running.id) == .unchanged(stopping))
        #expect(try await jobs.finishJob(id: running.id, attempt: claimed.attempts, state: .completed, result: [1], error: nil))
        let ended = try #require(try await jobs.job(id: running.id))
        #expect(ended.state == .completed && ended.cancelledAt == stopping.cancelledAt, "its end keeps the cancel")
        #expect(try await jobs.cancelJob(id: running.id) == .unchanged(ended))
        #expect(try await jobs.cancelJob(id: "no-such-job") == .notFound)
    }

    @Test(arguments: LedgerStore.available)
    func aCancelledJobWhoseGatewayDiedFailsInsteadOfRunningAgain(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try await makeStore(store, clock: clock)
        let job = try await jobs.enqueueJob(newJob("abandoned"))
        _ = try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 1_000)
        _ = try await jobs.cancelJob(id: job.id)
        clock.advance(by: 2_000)
        let failed = try await jobs.recoverAbandonedJobs(now: clock.millisecondsNow, maxAttempts: 3)
        #expect(failed.map(\.id) == [job.id] && failed.first?.error == JobRecord.cancelledError, "returned for its hold to be voided")
        #expect(try await jobs.queuedJobCount() == 0)
    }

    @Test(arguments: LedgerStore.available)
    func theQueueIsListedOldestFirstWithEachKeysLastTurn(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try await makeStore(store, clock: clock)
        var ids: [String] = []
        for (key, model) in [("kone", "a"), ("kone", "b"), ("ktwo", "c"), ("kone", "d")] {
            ids.append(try await jobs.enqueueJob(newJob(model, key: key)).id)
            clock.advance(by: 10)
        }
        let claimed = try #require(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 60_000))
        #expect(claimed.id == ids[0])
        let queued = try await jobs.queuedJobs()
        #expect(queued.map(\.id) == Array(ids.dropFirst()))
        #expect(queued.map(\.model) == ["b", "c", "d"])
        // kone has had a turn, ktwo none.
        #expect(queued.map { $0.keyLastTurn != nil } == [true, false, true])
    }

    @Test(arguments: LedgerStore.available)
    func cancelsRacingClaimsLeaveEachJobRemovedOrRunNeverBoth(store: LedgerStore) async throws {
        let jobs = try await makeStore(store, clock: ManualClock())
        var queued: [String] = []
        for index in 0..<30 { queued.append(try await jobs.enqueueJob(newJob("m\(index)")).id) }
        let ids = queued
        let (claimed, cancels) = try await withThrowingTaskGroup(of: ([String], [String: JobCancellation]).self) { group in
            for _ in 0..<3 {
                group.addTask {
                    var mine: [String] = []
                    while let job = try await jobs.claimJob(leaseUntil: .max) { mine.append(job.id) }
                    return (mine, [:])
                }
            }
            group.addTask {
                var outcomes: [String: JobCancellation] = [:]
                for id in ids { outcomes[id] = try await jobs.cancelJob(id: id) }
                return ([], outcomes)
            }
            return try await group.reduce(into: ([String](), [String: JobCancellation]())) { total, part in
                total.0 += part.0
                total.1.merge(part.1) { $1 }
            }
        }
        let removed = Set(cancels.compactMap { id, outcome in if case .removed = outcome { id } else { nil } })
        let stopping = Set(cancels.compactMap { id, outcome in if case .stopping = outcome { id } else { nil } })
        #expect(removed.isDisjoint(with: claimed), "a removed job was never claimed")
        #expect(Set(claimed) == Set(ids).subtracting(removed), "every other job was claimed, once")
        #expect(claimed.count == Set(claimed).count)
        #expect(stopping == Set(claimed), "each claimed job was marked for its runner")
    }

    /// PostgreSQL: a cancel that waits on a running job's row while the upkeep puts the job back
    /// in the queue removes it. As two statements, the first (for a queued job) passed the running
    /// job by, the second (for a running one) waited for the row and then found it queued:
    /// "unchanged", and the job ran again.
    @Test(.enabled(if: TestPostgres.url != nil))
    func aCancelWaitingWhileTheUpkeepRequeuesTheJobRemovesIt() async throws {
        let clock = ManualClock()
        let ledger = try #require(try await LedgerStore.postgres.make(clock: clock).0 as? PostgresLedger)
        let job = try await ledger.enqueueJob(newJob("requeued"))
        _ = try await ledger.claimJob(leaseUntil: clock.millisecondsNow + 1_000)
        let logger = Logger(label: "test")
        let cancellation = try await ledger.client.withConnection { upkeep in
            // The upkeep's requeue, its row lock held until the cancel waits on it.
            try await upkeep.query("BEGIN", logger: logger)
            try await upkeep.query("UPDATE job SET state = 'QUEUED' WHERE id = \(job.id)", logger: logger)
            let cancel = Task { try await ledger.cancelJob(id: job.id) }
            let waits = try await eventually(timeout: .seconds(30)) {
                var waiting = 0
                for try await count in try await upkeep.query("SELECT COUNT(*) FROM pg_locks WHERE NOT granted", logger: logger).decode(Int.self) {
                    waiting = count
                }
                return waiting > 0
            }
            try await upkeep.query("COMMIT", logger: logger)
            #expect(waits, "the cancel waited for the row")
            return try await cancel.value
        }
        guard case .removed(let removed) = cancellation else { Issue.record("not removed: \(cancellation)"); return }
        #expect(removed.state == .failed && removed.error == JobRecord.cancelledError)
        #expect(try await ledger.claimJob(leaseUntil: clock.millisecondsNow + 60_000) == nil, "never run again")
    }
}
