import Foundation
import GRDB
public import GenerationCore

/// `Idempotency-Key` records in the SQLite file. A running claim ends with the hold that backs it:
/// a gateway killed mid-request leaves a claim whose hold expires, and a repeat then runs afresh.
extension SQLiteLedger {
    static let idempotencyHoldsSchema = """
        -- The hold of the running request, and until when a claim without one yet stands.
        ALTER TABLE idempotency_key ADD COLUMN hold_id TEXT;
        ALTER TABLE idempotency_key ADD COLUMN running_until INTEGER;

        """
    /// Which claim of a key is running (a repeat that takes over a lapsed claim makes its own).
    static let idempotencyClaimsSchema = "ALTER TABLE idempotency_key ADD COLUMN claim TEXT"

    public func claimIdempotencyKey(
        keyID: String, key: String, fingerprint: [UInt8], at: Timestamp,
        runningUntil: Timestamp, claim: String
    ) async throws(LedgerError) -> IdempotencyClaim {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO idempotency_key (key_id, idempotency_key, fingerprint, created_at, running_until, claim)
                    VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT DO NOTHING
                    """, arguments: [keyID, key, Data(fingerprint), at, runningUntil, claim])
            if db.changesCount == 1 { return .claimed }
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT i.*, h.state AS hold_state FROM idempotency_key i LEFT JOIN hold h ON h.id = i.hold_id
                        WHERE i.key_id = ? AND i.idempotency_key = ?
                        """, arguments: [keyID, key])
            else { return .inProgress }
            let state = IdempotencyRecordState(
                status: row["status"], holdID: row["hold_id"], holdState: row["hold_state"],
                runningUntil: row["running_until"])
            if state.lapsed(at: at) {
                try db.execute(
                    sql: """
                        UPDATE idempotency_key SET fingerprint = ?, created_at = ?, running_until = ?, hold_id = NULL, claim = ?
                        WHERE key_id = ? AND idempotency_key = ?
                        """, arguments: [Data(fingerprint), at, runningUntil, claim, keyID, key])
                return .claimed
            }
            guard Array(row["fingerprint"] as Data) == fingerprint else { return .mismatch }
            guard let status = row["status"] as Int? else { return .inProgress }
            let headers = (try? JSONDecoder().decode([[String]].self, from: Data((row["headers"] as String? ?? "[]").utf8))) ?? []
            return .completed(StoredAnswer(status: status, headers: headers, body: Array(row["body"] as Data? ?? Data())))
        }
    }

    public func backIdempotencyKey(keyID: String, key: String, claim: String, with hold: HoldID) async throws(LedgerError) {
        try await write { db in
            try db.execute(
                sql: "UPDATE idempotency_key SET hold_id = ? WHERE key_id = ? AND idempotency_key = ? AND claim = ? AND status IS NULL",
                arguments: [hold.rawValue, keyID, key, claim])
        }
    }

    public func completeIdempotencyKey(keyID: String, key: String, claim: String, answer: StoredAnswer) async throws(LedgerError) {
        let headers = String(decoding: (try? JSONEncoder().encode(answer.headers)) ?? Data("[]".utf8), as: UTF8.self)
        try await write { db in
            try db.execute(
                sql: "UPDATE idempotency_key SET status = ?, headers = ?, body = ? WHERE key_id = ? AND idempotency_key = ? AND claim = ?",
                arguments: [answer.status, headers, Data(answer.body), keyID, key, claim])
        }
    }

    public func releaseIdempotencyKey(keyID: String, key: String, claim: String) async throws(LedgerError) {
        try await write { db in
            try db.execute(
                sql: "DELETE FROM idempotency_key WHERE key_id = ? AND idempotency_key = ? AND claim = ? AND status IS NULL",
                arguments: [keyID, key, claim])
        }
    }

    public func purgeIdempotencyKeys(before cutoff: Timestamp) async throws(LedgerError) -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM idempotency_key WHERE created_at < ?", arguments: [cutoff])
            return db.changesCount
        }
    }
}
