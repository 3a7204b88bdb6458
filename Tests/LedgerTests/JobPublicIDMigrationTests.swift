import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// Jobs have public ids since migration 010: the jobs of a database from before get distinct ones
/// when a gateway opens it, found like any other, and new jobs' never clash with them.
@Suite("Job public id migration")
struct JobPublicIDMigrationTests {
    @Test(arguments: LedgerStore.databases)
    func jobsFromBeforePublicIDsGetDistinctOnes(store: LedgerStore) async throws {
        let (_, path) = try await store.make(clock: ManualClock())
        // The database as the previous version left it: no column, no index, no migration, two jobs.
        let sqlite = store == .sqlite
        let payload = sqlite ? "X'7B7D'" : #"'\x7b7d'"#
        let previous = try await store.execute(
            """
            \(sqlite ? "DROP INDEX job_by_public_id;" : "")
            ALTER TABLE job DROP COLUMN public_id;
            DELETE FROM \(sqlite ? "grdb_migrations WHERE identifier" : "sdgate_migration WHERE name") = '010 public ids of jobs';
            INSERT INTO job (id, key_id, dialect, model, payload, hold_id, cost, state, created_at)
            VALUES ('old-queued', 'k1', 'modelslab', 'sdxl', \(payload), 'h1', 8000, 'QUEUED', 0),
                   ('old-completed', 'k1', 'modelslab', 'sdxl', \(payload), 'h2', 8000, 'COMPLETED', 1);
            """, on: path)
        #expect(previous.status == 0, "\(previous.errors)")

        let jobs = try #require(try await store.open(path, clock: ManualClock()) as? any JobStore)
        var old: [JobRecord] = []
        for id in ["old-queued", "old-completed"] { old.append(try #require(try await jobs.job(id: id))) }
        #expect(old.allSatisfy { JobPublicID.range.contains($0.publicID) })
        #expect(old[0].publicID != old[1].publicID)
        for job in old { #expect(try await jobs.job(publicID: job.publicID) == job) }

        let new = try await jobs.enqueueJob(
            NewJob(keyID: "k1", dialect: "modelslab", model: "sdxl", payload: [0x7B, 0x7D], hold: HoldID("h3"), cost: credits("0.008")))
        #expect(!old.contains { $0.publicID == new.publicID })
        #expect(try await jobs.job(publicID: new.publicID) == new)
    }
}
