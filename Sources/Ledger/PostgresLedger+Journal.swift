import GenerationCore
import PostgresNIO

/// The journal: keys' and teams' entries as one sequence, a page at a time, through the index on
/// their time. Account ids compare byte by byte (`COLLATE "C"`), as the other stores order them,
/// whatever the database's locale.
extension PostgresLedger {
    static let entriesByTimeSchema: [PostgresQuery] = [
        "CREATE INDEX entry_by_time ON entry (created_at)",
        "CREATE INDEX team_entry_by_time ON team_entry (created_at)",
    ]

    public func journal(from: Timestamp, to: Timestamp, after position: JournalPosition?, limit: Int) async throws(LedgerError) -> [JournalEntry] {
        // Before every entry of the window: no entry ranks below 0.
        let (startAt, startRank, startAccount, startSequence) =
            position.map { ($0.at, $0.accountRank, $0.account.id, $0.sequence) } ?? (from, -1, "", 0)
        let limit = max(limit, 0)
        return try await perform { client, logger in
            var entries: [JournalEntry] = []
            for try await row in try await client.query(
                """
                SELECT created_at, rank, account, id, kind, amount, hold_id, reason FROM (
                    SELECT created_at, 0 AS rank, key_id COLLATE "C" AS account, id, kind, amount, hold_id, reason FROM entry
                    WHERE created_at >= \(from) AND created_at < \(to)
                    UNION ALL
                    SELECT created_at, 1, team_id COLLATE "C", id, kind, amount, hold_id, reason FROM team_entry
                    WHERE created_at >= \(from) AND created_at < \(to)
                ) AS journal
                WHERE (created_at, rank, account, id) > (\(startAt), \(startRank), \(startAccount)::TEXT COLLATE "C", \(startSequence))
                ORDER BY created_at, rank, account, id
                LIMIT \(limit)
                """, logger: logger
            ).decode((Int64, Int, String, Int64, String, Int64, String?, String).self) {
                let account: Account = row.1 == 0 ? .key(row.2) : .team(row.2)
                entries.append(
                    JournalEntry(
                        position: JournalPosition(at: row.0, account: account, sequence: row.3), kind: row.4,
                        amount: Credits(microCredits: row.5), holdID: row.6, reason: row.7))
            }
            return entries
        }
    }
}
