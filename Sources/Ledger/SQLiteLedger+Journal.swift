import GRDB
import GenerationCore

/// The journal: keys' and teams' entries as one sequence, a page at a time, through the index on
/// their time.
extension SQLiteLedger {
    static let entriesByTimeSchema = """
        CREATE INDEX entry_by_time ON entry (created_at);
        CREATE INDEX team_entry_by_time ON team_entry (created_at);
        """

    public func journal(from: Timestamp, to: Timestamp, after position: JournalPosition?, limit: Int) async throws(LedgerError) -> [JournalEntry] {
        // Before every entry of the window: no entry ranks below 0.
        let (startAt, startRank, startAccount, startSequence) =
            position.map { ($0.at, $0.accountRank, $0.account.id, $0.sequence) } ?? (from, -1, "", 0)
        let limit = max(limit, 0)
        return try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM (
                        SELECT created_at, 0 AS rank, key_id AS account, id, kind, amount, hold_id, reason FROM entry
                        WHERE created_at >= ? AND created_at < ?
                        UNION ALL
                        SELECT created_at, 1, team_id, id, kind, amount, hold_id, reason FROM team_entry
                        WHERE created_at >= ? AND created_at < ?
                    )
                    WHERE (created_at, rank, account, id) > (?, ?, ?, ?)
                    ORDER BY created_at, rank, account, id
                    LIMIT ?
                    """, arguments: [from, to, from, to, startAt, startRank, startAccount, startSequence, limit]
            ).map { row in
                let account: Account = row["rank"] == 0 ? .key(row["account"]) : .team(row["account"])
                return JournalEntry(
                    position: JournalPosition(at: row["created_at"], account: account, sequence: row["id"]), kind: row["kind"],
                    amount: Credits(microCredits: row["amount"]), holdID: row["hold_id"], reason: row["reason"])
            }
        }
    }
}
