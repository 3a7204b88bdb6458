import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// Jobs are marked settled since SQLite's migration 020 (PostgreSQL's 021). In a database from
/// before, the jobs that ended count as settled, but for those whose hold is still open: their
/// gateway died between their end and their settle, and the upkeep settles them now.
@Suite("Job settlement migration")
struct JobSettlementMigrationTests {
    @Test(arguments: LedgerStore.databases)
    func onlyTheJobsThatEndedWithTheirHoldOpenAreLeftToSettle(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (made, path) = try await store.make(clock: clock)
        let ledger = try #require(made as? any Ledger & JobStore)
        let (key, _) = try await ledger.createKey(NewKey(name: "member"))
        _ = try await ledger.adjust(.key(key.id), by: credits("1"), reason: "test")
        /// A job that ended as `state`, its hold then settled by `settle` as the version before did (nil: its gateway died first).
        func job(_ state: JobState?, settle: ((HoldID) async throws -> Void)? = nil) async throws -> String {
            let reserved = try await ledger.reserve(keyID: key.id, amount: credits("0.008"), expiresAt: clock.millisecondsNow + 600_000)
            guard case .held(let hold, _) = reserved else { throw LedgerError.insufficientBalance }
            let queued = try await ledger.enqueueJob(
                NewJob(keyID: key.id, dialect: "segmind", model: "sdxl", payload: [0x7B, 0x7D], hold: hold, cost: credits("0.008")))
            guard let state else { return queued.id }
            let claimed = try #require(try await ledger.claimJob(leaseUntil: clock.millisecondsNow + 60_000))
            _ = try await ledger.finishJob(id: claimed.id, attempt: claimed.attempts, state: state, result: [1], error: nil)
            try await settle?(hold)
            clock.advance(by: 10)
            return queued.id
        }
        let diedBeforeItsCharge = try await job(.completed)
        _ = try await job(.completed) { hold in _ = try await ledger.post(hold, charge: credits("0.008")) }
        _ = try await job(.failed) { hold in _ = try await ledger.void(hold, reason: "it failed") }
        let diedBeforeItsRelease = try await job(.failed)
        _ = try await job(nil)

        // The database as the previous version left it: no column, no index, no migration.
        let migration =
            store == .sqlite ? "grdb_migrations WHERE identifier = '020 settled jobs'" : "sdgate_migration WHERE name = '021 settled jobs'"
        let previous = try await store.execute(
            "DROP INDEX job_unsettled; ALTER TABLE job DROP COLUMN settled_at; DELETE FROM \(migration);", on: path)
        #expect(previous.status == 0, "\(previous.errors)")

        let reopened = try #require(try await store.open(path, clock: clock) as? any Ledger & JobStore)
        #expect(try await reopened.unsettledJobIDs(limit: 10) == [diedBeforeItsCharge, diedBeforeItsRelease])
    }
}
