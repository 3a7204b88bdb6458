import Foundation
import GenerationCore
import PostgresNIO

/// The alerts' states and the credits' funding in PostgreSQL. Replicas move a subject's state with
/// a compare-and-set, so one of them sends each alert.
extension PostgresLedger: AlertStore {
    /// Operator deliveries beside the members', the state of each watched subject, and what finds
    /// an account's last top-up and the entries after it without reading every entry.
    static let alertsSchema: [PostgresQuery] = [
        "ALTER TABLE webhook_delivery ADD COLUMN recipient TEXT NOT NULL DEFAULT 'member' CHECK (recipient IN ('member', 'operator'))",
        "CREATE TABLE alert_state (subject TEXT PRIMARY KEY, epoch TEXT NOT NULL, level INTEGER NOT NULL, changed_at BIGINT NOT NULL)",
        "CREATE INDEX entry_by_key ON entry (key_id, id)",
        "CREATE INDEX team_entry_by_team ON team_entry (team_id, id)",
    ]

    public func funding(of account: Account) async throws(LedgerError) -> Funding? {
        let (totals, entries) = (account.totalsTable, account.entriesTable)
        let query: PostgresQuery = """
            WITH last AS (SELECT max(id) AS id FROM \(unescaped: entries.name) WHERE \(unescaped: entries.owner) = \(account.id) AND kind = 'topup')
            SELECT t.balance, last.id,
                (SELECT COALESCE(SUM(amount), 0)::BIGINT FROM \(unescaped: entries.name) e
                 WHERE e.\(unescaped: entries.owner) = \(account.id) AND e.id > last.id)
            FROM \(unescaped: totals.name) t, last WHERE t.\(unescaped: totals.id) = \(account.id)
            """
        guard
            let row = try await perform({ client, logger in
                try await Self.first(client.query(query, logger: logger), (Int64, Int64?, Int64?).self)
            })
        else { throw account.unknown }
        guard let lastTopUp = row.1 else { return nil }
        return Funding(
            lastTopUp: String(lastTopUp), funded: Credits(microCredits: row.0 - (row.2 ?? 0)), balance: Credits(microCredits: row.0))
    }

    public func alertState(subject: String) async throws(LedgerError) -> AlertState? {
        let row = try await perform { client, logger in
            try await Self.first(
                client.query("SELECT epoch, level FROM alert_state WHERE subject = \(subject)", logger: logger), (String, Int).self)
        }
        return row.map { AlertState(epoch: $0.0, level: $0.1) }
    }

    public func moveAlertState(subject: String, from expected: AlertState?, to new: AlertState, queueing deliveries: [NewWebhook])
        async throws(LedgerError) -> Bool
    {
        let at = now()
        let move: PostgresQuery =
            if let expected {
                """
                UPDATE alert_state SET epoch = \(new.epoch), level = \(new.level), changed_at = \(at)
                WHERE subject = \(subject) AND epoch = \(expected.epoch) AND level = \(expected.level) RETURNING subject
                """
            } else {
                """
                INSERT INTO alert_state (subject, epoch, level, changed_at) VALUES (\(subject), \(new.epoch), \(new.level), \(at))
                ON CONFLICT (subject) DO NOTHING RETURNING subject
                """
            }
        return try await transaction { connection, logger in
            guard try await Self.first(connection.query(move, logger: logger)) != nil else { return false }
            for delivery in deliveries { try await connection.query(try Self.queue(delivery, at: at), logger: logger) }
            return true
        }
    }

    public func alertStateCounts() async throws(LedgerError) -> [AlertStateCount] {
        try await perform { client, logger in
            var counts: [AlertStateCount] = []
            let rows = try await client.query(
                "SELECT split_part(subject, ':', 1), level, count(*)::BIGINT FROM alert_state GROUP BY 1, 2 ORDER BY 1, 2", logger: logger)
            for try await row in rows.decode((String, Int, Int).self) { counts.append(AlertStateCount(kind: row.0, level: row.1, count: row.2)) }
            return counts
        }
    }
}
