import Foundation
import GRDB
import GenerationCore

/// The alerts' states and the credits' funding in the SQLite file.
extension SQLiteLedger: AlertStore {
    /// Operator deliveries beside the members', the state of each watched subject, and what finds
    /// an account's last top-up and the entries after it without reading every entry.
    static let alertsSchema = """
        ALTER TABLE webhook_delivery ADD COLUMN recipient TEXT NOT NULL DEFAULT 'member' CHECK (recipient IN ('member', 'operator'));
        CREATE TABLE alert_state (
            subject TEXT PRIMARY KEY,
            epoch TEXT NOT NULL,
            level INTEGER NOT NULL,
            changed_at INTEGER NOT NULL
        );
        CREATE INDEX entry_by_key ON entry (key_id, id);
        CREATE INDEX team_entry_by_team ON team_entry (team_id, id);
        """

    public func funding(of account: Account) async throws(LedgerError) -> Funding? {
        let (totals, entries) = (account.totalsTable, account.entriesTable)
        return try await read { db -> Funding? in
            guard let balance = try Int64.fetchOne(db, sql: "SELECT balance FROM \(totals.name) WHERE \(totals.id) = ?", arguments: [account.id])
            else { throw account.unknown }
            guard
                let lastTopUp = try Int64.fetchOne(
                    db, sql: "SELECT max(id) FROM \(entries.name) WHERE \(entries.owner) = ? AND kind = 'topup'", arguments: [account.id])
            else { return nil }
            let since =
                try Int64.fetchOne(
                    db, sql: "SELECT COALESCE(SUM(amount), 0) FROM \(entries.name) WHERE \(entries.owner) = ? AND id > ?",
                    arguments: [account.id, lastTopUp]) ?? 0
            return Funding(
                lastTopUp: String(lastTopUp), funded: Credits(microCredits: balance - since), balance: Credits(microCredits: balance))
        }
    }

    public func alertState(subject: String) async throws(LedgerError) -> AlertState? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT epoch, level FROM alert_state WHERE subject = ?", arguments: [subject]).map {
                AlertState(epoch: $0["epoch"], level: $0["level"])
            }
        }
    }

    public func moveAlertState(subject: String, from expected: AlertState?, to new: AlertState, queueing deliveries: [NewWebhook])
        async throws(LedgerError) -> Bool
    {
        let at = now()
        return try await write { db in
            if let expected {
                try db.execute(
                    sql: "UPDATE alert_state SET epoch = ?, level = ?, changed_at = ? WHERE subject = ? AND epoch = ? AND level = ?",
                    arguments: [new.epoch, new.level, at, subject, expected.epoch, expected.level])
            } else {
                try db.execute(
                    sql: "INSERT INTO alert_state (subject, epoch, level, changed_at) VALUES (?, ?, ?, ?) ON CONFLICT (subject) DO NOTHING",
                    arguments: [subject, new.epoch, new.level, at])
            }
            guard db.changesCount == 1 else { return false }
            for delivery in deliveries { _ = try Self.queue(delivery, at: at, in: db) }
            return true
        }
    }

    public func alertStateCounts() async throws(LedgerError) -> [AlertStateCount] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT substr(subject, 1, instr(subject, ':') - 1) AS kind, level, count(*) AS n FROM alert_state
                    GROUP BY kind, level ORDER BY kind, level
                    """
            ).map { AlertStateCount(kind: $0["kind"], level: $0["level"], count: $0["n"]) }
        }
    }
}
