public import GenerationCore
import PostgresNIO

/// Keys' request rates in PostgreSQL, shared by every gateway on the database (`RateCell`).
extension PostgresLedger: RateLimitStore {
    /// Unlogged: a transaction that writes only such a table does not wait for the write-ahead log
    /// to reach the disk, which made the statement cost a commit's fsync (about 9 ms against 0.6 ms
    /// on the test machine). The price: a crash of the database empties the table (every key starts
    /// again with its whole burst), and a standby does not have it. No reference to `api_key`: the
    /// row is written on the hot path. Its updates change no indexed column, so they stay on the
    /// row's page (HOT), which the fill factor leaves room for.
    static let rateLimitSchema: [PostgresQuery] = [
        "CREATE UNLOGGED TABLE rate_limit (key_id TEXT PRIMARY KEY, tat BIGINT NOT NULL, allowed BOOLEAN NOT NULL) WITH (fillfactor = 50)"
    ]

    /// One statement decides and records: the insert or the update holds the key's row lock, so
    /// concurrent requests from any replica are decided one after the other on the newest `tat`.
    /// A refused request rewrites the row unchanged but for `allowed`, so that the statement always
    /// returns the row it decided on.
    public func takeRequest(keyID: String, perMinute: Int, now: Int64) async throws(LedgerError) -> RateDecision {
        let cell = RateCell(perMinute: perMinute)
        let (interval, burst) = (cell.interval, cell.burst)
        let decided = try await perform { client, logger in
            try await Self.first(
                client.query(
                    """
                    INSERT INTO rate_limit AS r (key_id, tat, allowed) VALUES (\(keyID), \(now) + \(interval), TRUE)
                    ON CONFLICT (key_id) DO UPDATE SET
                        allowed = GREATEST(r.tat, \(now)) + \(interval) - \(now) <= \(burst),
                        tat = CASE WHEN GREATEST(r.tat, \(now)) + \(interval) - \(now) <= \(burst)
                            THEN GREATEST(r.tat, \(now)) + \(interval) ELSE r.tat END
                    RETURNING tat, allowed
                    """, logger: logger), (Int64, Bool).self)
        }
        guard let (tat, allowed) = decided else { throw .storage("the rate limit statement returned no row") }
        return cell.decision(tat: tat, allowed: allowed, now: now)
    }
}
