import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// Migration 012 (alerts): a database from before keeps its pending member webhooks, which go out
/// as before, signed with their key's secret, and gains the alerts' states.
@Suite("Alerts migration")
struct AlertsMigrationTests {
    @Test(arguments: LedgerStore.databases)
    func webhooksFromBeforeStayTheMembersAndAlertStatesAreKept(store: LedgerStore) async throws {
        let (_, path) = try await store.make(clock: ManualClock())
        // The database as the previous version left it: no recipient, no states, one pending webhook.
        let sqlite = store == .sqlite
        let previous = try await store.execute(
            """
            DROP TABLE alert_state;
            DROP INDEX entry_by_key;
            DROP INDEX team_entry_by_team;
            ALTER TABLE webhook_delivery DROP COLUMN recipient;
            DELETE FROM \(sqlite ? "grdb_migrations WHERE identifier" : "sdgate_migration WHERE name") = '012 alerts';
            INSERT INTO webhook_delivery (id, key_id, job_id, url, body, state, next_attempt_at, created_at)
            VALUES ('msg_old', 'k1', 'j1', 'https://hooks.example/', \(sqlite ? "X'7B7D'" : #"'\x7b7d'"#), 'PENDING', 0, 0);
            """, on: path)
        #expect(previous.status == 0, "\(previous.errors)")

        let ledger = try #require(try await store.open(path, clock: ManualClock()) as? any WebhookStore & AlertStore)
        let old = try #require(try await ledger.claimDueWebhook(now: 1, leaseUntil: 1000))
        #expect(old.id == "msg_old" && old.recipient == .member && old.keyID == "k1")
        #expect(try await ledger.moveAlertState(subject: "worker:h/0", from: nil, to: AlertState(epoch: "", level: 1), queueing: []))
        #expect(try await ledger.alertState(subject: "worker:h/0") == AlertState(epoch: "", level: 1))
    }
}
