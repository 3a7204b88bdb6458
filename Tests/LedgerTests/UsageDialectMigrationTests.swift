import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// Usage events name their dialect since migration 009: a database from before gains the column
/// when a gateway opens it, with no dialect on the events it already holds.
@Suite("Usage dialect migration")
struct UsageDialectMigrationTests {
    @Test(arguments: LedgerStore.databases)
    func usageEventsFromBeforeDialectsKeepNoneAndNewOnesTheirs(store: LedgerStore) async throws {
        let (_, path) = try await store.make(clock: ManualClock())
        // The database as the previous version left it: no column, no migration, one event. (The
        // index of a later migration names the column: SQLite drops no column an index names.)
        let previous = try await store.execute(
            """
            DROP INDEX usage_counted;
            ALTER TABLE usage_event DROP COLUMN dialect;
            DELETE FROM \(store == .sqlite ? "grdb_migrations WHERE identifier" : "sdgate_migration WHERE name") = '009 dialect on usage events';
            INSERT INTO usage_event (key_id, model, status, cost, duration_ms, backend, request_id, at)
            VALUES ('k1', 'sdxl-img2img', 200, 20000, 900, 'local', 'before', 0);
            """, on: path)
        #expect(previous.status == 0, "\(previous.errors)")

        let ledger = try await store.open(path, clock: ManualClock())
        let after = UsageEvent(
            keyID: "k1", model: "sdxl-img2img", dialect: "segmind", status: 200, cost: credits("0.02"), durationMilliseconds: 900,
            backend: "local", requestID: "after", at: 1)
        try await ledger.record(after)
        let before = UsageEvent(
            keyID: "k1", model: "sdxl-img2img", status: 200, cost: credits("0.02"), durationMilliseconds: 900, backend: "local",
            requestID: "before", at: 0)
        #expect(try await ledger.usage(keyID: "k1", teamID: nil, from: 0, to: 10) == [before, after])
    }
}

extension LedgerStore {
    /// The stores this run can test that have a schema to migrate.
    static var databases: [LedgerStore] { available.filter { $0 != .memory } }

    /// Runs `sql` on the database `make` made, as an operator's own client would.
    func execute(_ sql: String, on path: String) async throws -> Command.Result {
        switch self {
        case .sqlite:
            return try await Command.run("sqlite3", [path, sql])
        case .postgres:
            return try await Command.run("psql", [path, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        case .memory:
            throw LedgerError.storage("memory has no database to run SQL on")
        }
    }
}
