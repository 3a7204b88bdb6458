import Foundation
import GenerationCore
import Jobs
import Ledger
import Synchronization
import TestSupport
import Testing

@testable import SDGateApp

/// The job queue's upkeep over a real SQLite file.
@Suite("Job upkeep")
struct JobUpkeepTests {
    /// Each of the upkeep's statements commits on its own: the jobs one has failed are settled
    /// (holds voided, images of an earlier run deleted, usage and webhook recorded) before the
    /// next runs. Settled together after both, a second statement that failed (here a trigger
    /// refuses the expiry of queued jobs) left the first's failed jobs unsettled for good.
    @Test func theJobsOneStatementFailedAreSettledEvenIfTheNextFails() async throws {
        let path = Scratch.path("upkeep", pathExtension: "sqlite").path
        let ledger = try SQLiteLedger(path: path)
        func newJob(_ model: String) -> NewJob {
            NewJob(keyID: "kmember", dialect: "segmind", model: model, payload: [], hold: HoldID("h-\(model)"), cost: .zero)
        }
        // A running job cancelled by its key, whose runner died: the upkeep fails it as cancelled.
        let abandoned = try await ledger.enqueueJob(newJob("abandoned"))
        #expect(try await ledger.claimJob(leaseUntil: 1)?.id == abandoned.id)
        guard case .stopping = try await ledger.cancelJob(id: abandoned.id) else {
            Issue.record("the running job was not marked cancelled")
            return
        }
        // A job queued for longer than the queue allows, whose expiry the database refuses.
        let waiting = try await ledger.enqueueJob(newJob("waiting"))
        let sabotage = """
            UPDATE job SET created_at = 0 WHERE id = '\(waiting.id)';
            CREATE TRIGGER refuse_expiry BEFORE UPDATE OF state ON job WHEN NEW.error = 'the job waited too long in the queue'
            BEGIN SELECT RAISE(ABORT, 'refused'); END;
            """
        #expect(try await Command.run("sqlite3", [path, sabotage]).status == 0)

        let settled = Mutex<[String]>([])
        let upkeep = JobUpkeep(lease: .seconds(60), maxQueueTime: .seconds(3600), retention: .seconds(86400))
        await #expect(throws: LedgerError.self) {
            try await upkeep.run(ledger) { job, _ in settled.withLock { $0.append(job.id) } }
        }
        #expect(try await ledger.job(id: abandoned.id)?.state == .failed)
        #expect(settled.withLock { $0 } == [abandoned.id], "the failed job is settled")
        #expect(try await ledger.job(id: waiting.id)?.state == .queued, "its expiry was refused")
    }
}
