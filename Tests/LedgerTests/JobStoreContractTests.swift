import Foundation
import GenerationCore
import Synchronization
import TestSupport
import Testing

@testable import Ledger

/// The job queue, on both stores: FIFO claims, leases that bring a dead gateway's jobs back, and
/// each job run by exactly one claimer however many race for it.
@Suite("Job store contract")
struct JobStoreContractTests {
    func makeStore(_ store: LedgerStore, clock: ManualClock) async throws -> any JobStore {
        try #require(try await store.make(clock: clock).0 as? any JobStore)
    }

    func newJob(_ model: String = "sdxl1.0-txt2img", key: String = "kaaaaaaaa") -> NewJob {
        NewJob(
            keyID: key, dialect: "segmind", model: model, payload: Array(#"{"prompt":"a lighthouse"}"#.utf8), hold: HoldID("h-\(model)"),
            cost: credits("0.008"))
    }

    /// Settles an ended job as its runner would; its hold, made up here, is unknown: nothing moves.
    func settle(_ id: String, in jobs: any JobStore) async throws -> Bool {
        let usage = UsageEvent(
            keyID: "kaaaaaaaa", model: "sdxl1.0-txt2img", status: 500, cost: .zero, durationMilliseconds: 0, backend: "default", requestID: id,
            at: 0)
        return try await jobs.settleJob(
            JobSettlement(jobID: id, hold: HoldID("h-none"), charge: nil, releaseReason: "test", usage: usage, webhook: nil))
    }

    @Test(arguments: LedgerStore.available)
    func aJobIsQueuedClaimedOnceAndFinished(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try await makeStore(store, clock: clock)
        let queued = try await jobs.enqueueJob(newJob())
        #expect(queued.state == .queued && queued.attempts == 0 && queued.createdAt == clock.millisecondsNow)
        #expect(queued.id.count == 36, "a UUID: random, not a counter")
        #expect(try await jobs.job(id: queued.id) == queued)
        #expect(try await jobs.job(id: "no-such-job") == nil)
        #expect(try await jobs.queuedJobCount() == 1)

        let claimed = try #require(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 60_000))
        #expect(try await jobs.queuedJobCount() == 0)
        #expect(claimed.id == queued.id && claimed.state == .processing && claimed.attempts == 1)
        #expect(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 60_000) == nil)
        #expect(try await jobs.renewJobLease(id: claimed.id, attempt: claimed.attempts, until: clock.millisecondsNow + 120_000))

        #expect(try await jobs.finishJob(id: claimed.id, attempt: claimed.attempts, state: .completed, result: [1, 2, 3], error: nil))
        #expect(
            try await !jobs.finishJob(id: claimed.id, attempt: claimed.attempts, state: .failed, result: nil, error: "late"), "a job finishes once")
        let finished = try #require(try await jobs.job(id: claimed.id))
        #expect(finished.state == .completed && finished.result == [1, 2, 3] && finished.finishedAt != nil)
        #expect(try await !jobs.renewJobLease(id: claimed.id, attempt: claimed.attempts, until: clock.millisecondsNow + 180_000))
    }

    @Test(arguments: LedgerStore.available)
    func eachJobHasItsOwnPublicIDThatFindsIt(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try await makeStore(store, clock: clock)
        var queued: [JobRecord] = []
        for index in 0..<20 { queued.append(try await jobs.enqueueJob(newJob("m\(index)"))) }
        #expect(queued.allSatisfy { JobPublicID.range.contains($0.publicID) }, "exact as a double: at most 2^53 - 1")
        #expect(Set(queued.map(\.publicID)).count == queued.count)
        for job in queued { #expect(try await jobs.job(publicID: job.publicID) == job) }

        let unknown = try #require((1...Int64(queued.count + 1)).first { id in !queued.contains { $0.publicID == id } })
        #expect(try await jobs.job(publicID: unknown) == nil)
        for outOfRange: Int64 in [0, -1, .max] { #expect(try await jobs.job(publicID: outOfRange) == nil) }

        // The number stays the job's through its run, and goes with it when it is purged.
        let claimed = try #require(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 60_000))
        #expect(try await jobs.finishJob(id: claimed.id, attempt: claimed.attempts, state: .completed, result: [1], error: nil))
        let finished = try #require(try await jobs.job(publicID: claimed.publicID))
        #expect(finished.id == claimed.id && finished.state == .completed)
        clock.advance(by: 1)
        #expect(try await settle(claimed.id, in: jobs))
        #expect(try await jobs.purgeJobs(finishedBefore: clock.millisecondsNow) == 1)
        #expect(try await jobs.job(publicID: claimed.publicID) == nil)
    }

    @Test(arguments: LedgerStore.available)
    func aPublicIDThatIsTakenIsDrawnAgain(store: LedgerStore) async throws {
        let jobs = try await makeStore(store, clock: ManualClock())
        let first = try await JobPublicID.$source.withValue({ 42 }) { try await jobs.enqueueJob(newJob("a")) }
        #expect(first.publicID == 42)
        let numbers = Mutex<[Int64]>([42, 42, 43])
        let second = try await JobPublicID.$source.withValue({ numbers.withLock { $0.isEmpty ? 44 : $0.removeFirst() } }) {
            try await jobs.enqueueJob(newJob("b"))
        }
        #expect(second.publicID == 43 && numbers.withLock { $0.isEmpty })
        #expect(try await jobs.job(publicID: 42)?.id == first.id)

        // Nothing but taken numbers: the enqueue gives up, and says so, rather than try forever or
        // blame the key's limit; a key at its limit is still told so.
        await JobPublicID.$source.withValue({ 42 }) {
            await #expect {
                try await jobs.enqueueJob(newJob("c"))
            } throws: { error in
                if case .storage = error as? LedgerError { true } else { false }
            }
            let full = NewJob(
                keyID: "kfull", dialect: "segmind", model: "d", payload: [], hold: HoldID("h-d"), cost: credits("0.008"), maxQueuedForKey: 0)
            await #expect(throws: LedgerError.tooManyQueuedJobs(limit: 0)) { try await jobs.enqueueJob(full) }
        }
        #expect(try await jobs.queuedJobCount() == 2)
    }

    @Test(arguments: LedgerStore.available)
    func jobsAreClaimedOldestFirst(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try await makeStore(store, clock: clock)
        var ids: [String] = []
        for model in ["a", "b", "c"] {
            ids.append(try await jobs.enqueueJob(newJob(model)).id)
            clock.advance(by: 10)
        }
        var claimed: [String] = []
        while let job = try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 1000) { claimed.append(job.id) }
        #expect(claimed == ids)
    }

    @Test(arguments: LedgerStore.available)
    func aDeadGatewaysJobsAreRetriedThenFailed(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try await makeStore(store, clock: clock)
        let id = try await jobs.enqueueJob(newJob()).id
        _ = try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 1000)
        #expect(try await jobs.recoverAbandonedJobs(now: clock.millisecondsNow + 999, maxAttempts: 2).isEmpty)
        #expect(try await jobs.job(id: id)?.state == .processing, "the lease still holds")

        clock.advance(by: 1001)
        #expect(try await jobs.recoverAbandonedJobs(now: clock.millisecondsNow, maxAttempts: 2).isEmpty, "tried once of two: queued again")
        #expect(try await jobs.job(id: id)?.state == .queued)
        #expect(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 1000)?.attempts == 2)

        clock.advance(by: 1001)
        let failed = try await jobs.recoverAbandonedJobs(now: clock.millisecondsNow, maxAttempts: 2)
        #expect(failed.map(\.id) == [id] && failed.first?.hold == HoldID("h-sdxl1.0-txt2img"))
        let record = try #require(try await jobs.job(id: id))
        #expect(record.state == .failed && record.error?.contains("stopped while generating") == true)
    }

    /// A runner whose lease ran out while it still worked (its renewals failed) and whose job
    /// another runner claimed since can neither renew nor end that claim: the job is the new
    /// claim's to end and settle. Its end once took the new claim's, voiding the hold while the
    /// other runner went on to deliver.
    @Test(arguments: LedgerStore.available)
    func aClaimTakenBackCannotRenewOrEndTheNextOne(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try await makeStore(store, clock: clock)
        _ = try await jobs.enqueueJob(newJob())
        let first = try #require(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 1000))
        clock.advance(by: 1001)
        _ = try await jobs.recoverAbandonedJobs(now: clock.millisecondsNow, maxAttempts: 3)
        let second = try #require(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 1000))
        #expect(second.id == first.id && second.attempts == first.attempts + 1)

        #expect(try await !jobs.renewJobLease(id: first.id, attempt: first.attempts, until: clock.millisecondsNow + 60_000))
        #expect(try await !jobs.finishJob(id: first.id, attempt: first.attempts, state: .failed, result: nil, error: "stale"))
        #expect(try await jobs.job(id: first.id)?.state == .processing, "still the second claim's")
        #expect(try await jobs.renewJobLease(id: second.id, attempt: second.attempts, until: clock.millisecondsNow + 60_000))
        #expect(try await jobs.finishJob(id: second.id, attempt: second.attempts, state: .completed, result: [7], error: nil))
        #expect(try await jobs.job(id: first.id)?.result == [7])
    }

    @Test(arguments: LedgerStore.available)
    func jobsWaitingTooLongFailAndFinishedJobsArePurged(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try await makeStore(store, clock: clock)
        let old = try await jobs.enqueueJob(newJob("old"))
        clock.advance(by: 5000)
        let fresh = try await jobs.enqueueJob(newJob("fresh"))
        #expect(try await jobs.expireQueuedJobs(queuedBefore: clock.millisecondsNow - 1000).map(\.id) == [old.id])
        #expect(try await jobs.job(id: old.id)?.state == .failed)
        #expect(try await jobs.job(id: fresh.id)?.state == .queued)

        clock.advance(by: 5000)
        #expect(try await jobs.purgeJobs(finishedBefore: clock.millisecondsNow - 10_000) == 0)
        #expect(try await jobs.purgeJobs(finishedBefore: clock.millisecondsNow) == 0, "not settled yet: its settle would go with it")
        #expect(try await settle(old.id, in: jobs))
        // Only a count: the purged jobs are not read back (one queued before inputs were kept apart holds its image).
        #expect(try await jobs.purgeJobs(finishedBefore: clock.millisecondsNow) == 1)
        #expect(try await jobs.job(id: old.id) == nil)
        #expect(try await jobs.job(id: fresh.id) != nil, "a job not finished is never purged")
    }

    /// A job's input image (megabytes) is read by its claims only, and kept until the job ends,
    /// however it ends. Kept in the payload, it was read and decoded by every poll of the job (a
    /// member polling one 17 MB job from 100 threads stalled the gateway for seconds) and kept for
    /// the hour after the job failed free (ten such failures took 240 MB of disk).
    @Test(arguments: LedgerStore.available)
    func aJobsInputIsReadByItsClaimsOnlyAndGoesWhenItEnds(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, path) = try await store.make(clock: clock)
        let jobs = try #require(ledger as? any JobStore)
        let image = [UInt8](repeating: 7, count: 300_000)
        func queue(_ model: String) async throws -> JobRecord {
            var job = newJob(model)
            job.input = image
            return try await jobs.enqueueJob(job)
        }
        let finished = try await queue("finished")
        #expect(finished.input == nil)
        #expect(try await jobs.job(id: finished.id)?.input == nil)
        #expect(try await jobs.job(publicID: finished.publicID)?.input == nil)
        let claim = try #require(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 1000))
        #expect(claim.id == finished.id && claim.input == image)
        // Taken back from a gateway that died, it runs again: with its input.
        clock.advance(by: 1001)
        #expect(try await jobs.recoverAbandonedJobs(now: clock.millisecondsNow, maxAttempts: 3).isEmpty)
        let again = try #require(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 1000))
        #expect(again.id == finished.id && again.input == image)
        #expect(try await jobs.finishJob(id: again.id, attempt: again.attempts, state: .completed, result: [1], error: nil))

        let abandoned = try await queue("abandoned")
        let lastClaim = try #require(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 1000))
        clock.advance(by: 1001)
        #expect(try await jobs.recoverAbandonedJobs(now: clock.millisecondsNow, maxAttempts: lastClaim.attempts).map(\.id) == [abandoned.id])
        let cancelled = try await queue("cancelled")
        guard case .removed = try await jobs.cancelJob(id: cancelled.id) else { Issue.record("not removed"); return }
        let expired = try await queue("expired")
        clock.advance(by: 10)
        #expect(try await jobs.expireQueuedJobs(queuedBefore: clock.millisecondsNow).map(\.id) == [expired.id])
        let waiting = try await queue("waiting")

        #expect(try await Self.jobsKeepingTheirInput(ledger, at: path) == [waiting.id], "only the job that has not ended")
    }

    /// The ids of the jobs whose input the store still holds, read beneath the interface.
    static func jobsKeepingTheirInput(_ ledger: any Ledger, at path: String) async throws -> [String] {
        let query = "SELECT id FROM job WHERE input IS NOT NULL ORDER BY id"
        switch ledger {
        case let memory as InMemoryLedger:
            return try memory.locked { state in state.jobs.values.filter { $0.input != nil }.map(\.record.id).sorted() }
        case is SQLiteLedger:
            let run = try await Command.run("sqlite3", [path, query])
            #expect(run.status == 0, "\(run.errors)")
            return run.output.split(separator: "\n").map(String.init)
        default:
            let run = try await Command.run("psql", [path, "-tAc", query])
            #expect(run.status == 0, "\(run.errors)")
            return run.output.split(separator: "\n").map(String.init)
        }
    }

    @Test(arguments: LedgerStore.available)
    func racingClaimersRunEachJobOnce(store: LedgerStore) async throws {
        let jobs = try await makeStore(store, clock: ManualClock())
        var queued: Set<String> = []
        for index in 0..<20 { queued.insert(try await jobs.enqueueJob(newJob("m\(index)")).id) }
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var mine: [String] = []
                    while let job = try await jobs.claimJob(leaseUntil: .max) { mine.append(job.id) }
                    return mine
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(claimed.count == 20)
        #expect(Set(claimed) == queued)
    }
}

/// Fairness across keys, on both stores: claims take turns by key, and a key's queue is bounded.
@Suite("Job store fairness contract")
struct JobFairnessContractTests {
    func job(_ key: String, _ model: String, limit: Int? = nil) -> NewJob {
        NewJob(
            keyID: key, dialect: "segmind", model: model, payload: Array(#"{"prompt":"a lighthouse"}"#.utf8), hold: HoldID("h-\(key)-\(model)"),
            cost: credits("0.008"), maxQueuedForKey: limit)
    }

    @Test(arguments: LedgerStore.available)
    func keysTakeTurnsWhateverTheirBacklog(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try #require(try await store.make(clock: clock).0 as? any JobStore)
        for index in 0..<6 {
            _ = try await jobs.enqueueJob(job("kflooder", "f\(index)"))
            clock.advance(by: 10)
        }
        _ = try await jobs.enqueueJob(job("kpatient", "p0"))
        clock.advance(by: 10)
        _ = try await jobs.enqueueJob(job("kpatient", "p1"))
        clock.advance(by: 10)
        _ = try await jobs.enqueueJob(job("klate", "l0"))
        var claimed: [String] = []
        while let next = try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 60_000) { claimed.append(next.model) }
        // Each key's jobs oldest first; the keys in turns, the key that waited longest for its turn first.
        #expect(claimed == ["f0", "p0", "l0", "f1", "p1", "f2", "f3", "f4", "f5"])
    }

    @Test(arguments: LedgerStore.available)
    func aKeyMayQueueOnlyItsLimit(store: LedgerStore) async throws {
        let clock = ManualClock()
        let jobs = try #require(try await store.make(clock: clock).0 as? any JobStore)
        _ = try await jobs.enqueueJob(job("kbusy", "a", limit: 2))
        _ = try await jobs.enqueueJob(job("kbusy", "b", limit: 2))
        await #expect(throws: LedgerError.tooManyQueuedJobs(limit: 2)) { try await jobs.enqueueJob(job("kbusy", "c", limit: 2)) }
        // Another key is not affected, and a claimed job frees its place.
        _ = try await jobs.enqueueJob(job("kother", "d", limit: 2))
        #expect(try await jobs.queuedJobCount() == 3)
        #expect(try await jobs.claimJob(leaseUntil: clock.millisecondsNow + 60_000)?.model == "a")
        _ = try await jobs.enqueueJob(job("kbusy", "c", limit: 2))
        #expect(try await jobs.queuedJobCount() == 3)
    }
}
