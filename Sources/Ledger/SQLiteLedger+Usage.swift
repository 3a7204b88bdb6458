import Foundation
import GRDB
import GenerationCore

/// Usage events, and the admin token's hash.
extension SQLiteLedger {
    public func record(_ usage: UsageEvent) async throws(LedgerError) {
        try await write { db in try Self.insert(usage, db) }
    }

    static func insert(_ usage: UsageEvent, _ db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO usage_event (key_id, model, dialect, status, cost, duration_ms, backend, request_id, at,
                                         upstream_cost, upstream_remaining_credits)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            usage.keyID, usage.model, usage.dialect, usage.status, usage.cost.microCredits, usage.durationMilliseconds,
            usage.backend, usage.requestID, usage.at, usage.upstreamCost, usage.upstreamRemainingCredits,
        ])
    }

    public func usage(keyID: String?, teamID: String?, from: Timestamp, to: Timestamp) async throws(LedgerError) -> [UsageEvent] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM usage_event
                    WHERE (? IS NULL OR key_id = ?) AND (? IS NULL OR key_id IN (SELECT id FROM api_key WHERE team_id = ?))
                          AND at >= ? AND at < ?
                    ORDER BY at, id
                    """, arguments: [keyID, keyID, teamID, teamID, from, to]
            ).map { row in
                UsageEvent(
                    keyID: row["key_id"], model: row["model"], dialect: row["dialect"], status: row["status"],
                    cost: Credits(microCredits: row["cost"]), durationMilliseconds: row["duration_ms"], backend: row["backend"],
                    requestID: row["request_id"], at: row["at"], upstreamCost: row["upstream_cost"],
                    upstreamRemainingCredits: row["upstream_remaining_credits"])
            }
        }
    }

    public func storedAdminTokenHash() async throws(LedgerError) -> [UInt8]? {
        try await read { db in
            try Data.fetchOne(db, sql: "SELECT value FROM setting WHERE name = 'admin_token_sha256'").map { Array($0) }
        }
    }

    public func storeAdminTokenHash(_ hash: [UInt8]) async throws(LedgerError) -> Bool {
        try await write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO setting (name, value) VALUES ('admin_token_sha256', ?)", arguments: [Data(hash)])
            return db.changesCount == 1
        }
    }
}
