import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// Requests that held nothing are counted since SQLite's migration 019 and PostgreSQL's 020: a
/// database from before gains the count when a gateway opens it, each event it holds counting one
/// request (its refusals stay listed), and new refusals are counted beside them.
@Suite("Counted usage migration")
struct CountedUsageMigrationTests {
    @Test(arguments: LedgerStore.databases)
    func eventsFromBeforeCountOneRequestEach(store: LedgerStore) async throws {
        let (_, path) = try await store.make(clock: ManualClock())
        let migration = store == .sqlite ? "019 requests that held nothing counted" : "020 requests that held nothing counted"
        // The database as the previous version left it: no columns, no migration, two refusals listed.
        let drop =
            store == .sqlite
            ? "ALTER TABLE usage_event DROP COLUMN requests; ALTER TABLE usage_event DROP COLUMN counted;"
            : "ALTER TABLE usage_event DROP COLUMN requests, DROP COLUMN counted;"
        let previous = try await store.execute(
            """
            DROP INDEX usage_counted;
            \(drop)
            DELETE FROM \(store == .sqlite ? "grdb_migrations WHERE identifier" : "sdgate_migration WHERE name") = '\(migration)';
            INSERT INTO usage_event (key_id, model, dialect, status, cost, duration_ms, backend, request_id, at)
            VALUES ('k1', 'sdxl', 'segmind', 406, 0, 2, 'default', 'before-1', 0),
                   ('k1', 'sdxl', 'segmind', 406, 0, 3, 'default', 'before-2', 0);
            """, on: path)
        #expect(previous.status == 0, "\(previous.errors)")

        let ledger = try await store.open(path, clock: ManualClock())
        for _ in 0..<3 {
            try await ledger.count(CountedRequest(keyID: "k1", model: "sdxl", dialect: "segmind", status: 406, durationMilliseconds: 5, at: 10))
        }
        let before = (1...2).map {
            UsageEvent(
                keyID: "k1", model: "sdxl", dialect: "segmind", status: 406, cost: .zero, durationMilliseconds: Int64($0 + 1),
                backend: "default", requestID: "before-\($0)", at: 0)
        }
        let counted = UsageEvent(
            keyID: "k1", model: "sdxl", dialect: "segmind", status: 406, cost: .zero, durationMilliseconds: 5, backend: "",
            requestID: "", at: 0, requests: 3, counted: true)
        #expect(try await ledger.usage(keyID: "k1", teamID: nil, from: 0, to: 60_000) == before + [counted])
        #expect(
            try await ledger.usageTotals(UsageScope(from: 0, to: 60_000), by: .key, cuts: []) == [
                UsageTotal(bucket: 0, keyID: "k1", requests: 5, microCredits: 0)
            ])
    }
}
