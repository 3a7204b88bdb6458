import Foundation
public import GenerationCore
import PostgresNIO

/// `Idempotency-Key` records in PostgreSQL. A running claim ends with the hold that backs it: a
/// replica killed mid-request leaves a claim whose hold expires, and a repeat then runs afresh.
extension PostgresLedger {
    static let idempotencyHoldsSchema: [PostgresQuery] = [
        "ALTER TABLE idempotency_key ADD COLUMN hold_id TEXT, ADD COLUMN running_until BIGINT"
    ]
    /// Which claim of a key is running (a repeat that takes over a lapsed claim makes its own).
    static let idempotencyClaimsSchema: [PostgresQuery] = ["ALTER TABLE idempotency_key ADD COLUMN claim TEXT"]

    public func claimIdempotencyKey(
        keyID: String, key: String, fingerprint: [UInt8], at: Timestamp,
        runningUntil: Timestamp, claim: String
    ) async throws(LedgerError) -> IdempotencyClaim {
        let print = Data(fingerprint)
        return try await transaction { connection, logger in
            let inserted = try await Self.first(
                connection.query(
                    """
                    INSERT INTO idempotency_key (key_id, idempotency_key, fingerprint, created_at, running_until, claim)
                    VALUES (\(keyID), \(key), \(print), \(at), \(runningUntil), \(claim))
                    ON CONFLICT DO NOTHING RETURNING key_id
                    """, logger: logger), String.self)
            if inserted != nil { return .claimed }
            guard
                let (stored, status, headers, body, holdID, holdState, until) = try await Self.first(
                    connection.query(
                        """
                        SELECT i.fingerprint, i.status, i.headers, i.body, i.hold_id, h.state, i.running_until
                        FROM idempotency_key i LEFT JOIN hold h ON h.id = i.hold_id
                        WHERE i.key_id = \(keyID) AND i.idempotency_key = \(key) FOR UPDATE OF i
                        """, logger: logger), (Data, Int?, String?, Data?, String?, String?, Int64?).self)
            else { return .inProgress }
            if IdempotencyRecordState(status: status, holdID: holdID, holdState: holdState, runningUntil: until).lapsed(at: at) {
                try await connection.query(
                    """
                    UPDATE idempotency_key
                    SET fingerprint = \(print), created_at = \(at), running_until = \(runningUntil), hold_id = NULL, claim = \(claim)
                    WHERE key_id = \(keyID) AND idempotency_key = \(key)
                    """, logger: logger)
                return .claimed
            }
            guard Array(stored) == fingerprint else { return .mismatch }
            guard let status else { return .inProgress }
            let pairs = (try? JSONDecoder().decode([[String]].self, from: Data((headers ?? "[]").utf8))) ?? []
            return .completed(StoredAnswer(status: status, headers: pairs, body: Array(body ?? Data())))
        }
    }

    public func backIdempotencyKey(keyID: String, key: String, claim: String, with hold: HoldID) async throws(LedgerError) {
        try await perform { client, logger in
            try await client.query(
                """
                UPDATE idempotency_key SET hold_id = \(hold.rawValue)
                WHERE key_id = \(keyID) AND idempotency_key = \(key) AND claim = \(claim) AND status IS NULL
                """, logger: logger)
        }
    }

    public func completeIdempotencyKey(keyID: String, key: String, claim: String, answer: StoredAnswer) async throws(LedgerError) {
        let headers = String(decoding: (try? JSONEncoder().encode(answer.headers)) ?? Data("[]".utf8), as: UTF8.self), body = Data(answer.body)
        try await perform { client, logger in
            try await client.query(
                """
                UPDATE idempotency_key SET status = \(answer.status), headers = \(headers), body = \(body)
                WHERE key_id = \(keyID) AND idempotency_key = \(key) AND claim = \(claim)
                """, logger: logger)
        }
    }

    public func releaseIdempotencyKey(keyID: String, key: String, claim: String) async throws(LedgerError) {
        try await perform { client, logger in
            try await client.query(
                "DELETE FROM idempotency_key WHERE key_id = \(keyID) AND idempotency_key = \(key) AND claim = \(claim) AND status IS NULL",
                logger: logger)
        }
    }

    public func purgeIdempotencyKeys(before cutoff: Timestamp) async throws(LedgerError) -> Int {
        try await perform { client, logger in
            var count = 0
            for try await _ in try await client.query("DELETE FROM idempotency_key WHERE created_at < \(cutoff) RETURNING key_id", logger: logger) {
                count += 1
            }
            return count
        }
    }
}
