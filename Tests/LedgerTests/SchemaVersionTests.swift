import Foundation
import TestSupport
import Testing

@testable import Ledger

/// A database that a newer version brought up to date is not served by an older one: the newer
/// version's tables may hold what the older would read wrong (a job's image stored apart, which
/// an older gateway read as a job without an image, and ran as text-to-image).
@Suite("Schema versions")
struct SchemaVersionTests {
    @Test(arguments: LedgerStore.databases)
    func aDatabaseANewerVersionMigratedIsRefusedWithWhatToDo(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (_, path) = try await store.make(clock: clock)
        _ = try await store.open(path, clock: clock)

        let newer =
            store == .sqlite
            ? "INSERT INTO grdb_migrations (identifier) VALUES ('999 from a newer version')"
            : "INSERT INTO sdgate_migration (name, applied_at) VALUES ('999 from a newer version', 0)"
        let inserted = try await store.execute(newer, on: path)
        #expect(inserted.status == 0, "\(inserted.errors)")
        do {
            _ = try await store.open(path, clock: clock)
            Issue.record("a database with a migration this version does not know was opened")
        } catch let error as LedgerError {
            #expect(
                error.description
                    == "storage failed: the database was brought up to date by a newer version of sdgate (migrations 999 from a newer version), "
                    + "which this version cannot serve: run that version, or restore the backup taken before the upgrade")
        }
    }
}
