import Foundation
import GRDB
import GenerationCore

/// API keys in the SQLite file: only each secret's SHA-256 is stored.
extension SQLiteLedger {
    public func createKey(_ key: NewKey) async throws(LedgerError) -> (key: LedgerKey, secret: String) {
        let (id, secret) = APIKeySecret.make()
        let created = LedgerKey(
            id: id, name: key.name, createdAt: now(), expiresAt: key.expiresAt, revokedAt: nil,
            models: key.models, rateLimitPerMinute: key.rateLimitPerMinute, teamID: key.teamID)
        try await write { db in
            if let team = key.teamID, try Self.teamRow(db, team) == nil { throw LedgerError.unknownTeam(team) }
            try db.execute(
                sql: """
                    INSERT INTO api_key (id, name, secret_hash, created_at, expires_at, models, rate_limit_per_minute, team_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    id, key.name, Data(APIKeySecret.hash(secret)), created.createdAt, key.expiresAt,
                    key.models?.joined(separator: ","), key.rateLimitPerMinute, key.teamID,
                ])
            try db.execute(sql: "INSERT INTO balance (key_id, balance, held) VALUES (?, 0, 0)", arguments: [id])
        }
        return (created, secret)
    }

    public func key(secret: String) async throws(LedgerError) -> LedgerKey? {
        try await recentKeys.key(secret: secret) { (id: String) throws(LedgerError) in
            try await read(oneStatement: true) { db in
                try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM api_key WHERE id = ?"), arguments: [id]).map {
                    (Self.key(from: $0), Array(($0["secret_hash"] as Data?) ?? Data()))
                }
            }
        }
    }

    public func key(id: String) async throws(LedgerError) -> LedgerKey? {
        try await read(oneStatement: true) { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM api_key WHERE id = ?"), arguments: [id]).map(Self.key(from:))
        }
    }

    public func keys() async throws(LedgerError) -> [LedgerKey] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM api_key ORDER BY created_at, id").map(Self.key(from:)) }
    }

    public func revoke(keyID: String) async throws(LedgerError) {
        let changed = try await write { db in
            try db.execute(sql: "UPDATE api_key SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [self.now(), keyID])
            return db.changesCount
        }
        recentKeys.forget(keyID)
        if changed == 0, try await key(id: keyID) == nil { throw .unknownKey(keyID) }
    }

    public func setLimits(keyID: String, models: [String]?, rateLimitPerMinute: Int?, expiresAt: Timestamp?) async throws(LedgerError) -> LedgerKey {
        let changed = try await write { db in
            try db.execute(
                sql: "UPDATE api_key SET models = ?, rate_limit_per_minute = ?, expires_at = ? WHERE id = ?",
                arguments: [models?.joined(separator: ","), rateLimitPerMinute, expiresAt, keyID])
            return db.changesCount
        }
        recentKeys.forget(keyID)
        guard changed == 1, let key = try await key(id: keyID) else { throw .unknownKey(keyID) }
        return key
    }

    static func key(from row: Row) -> LedgerKey {
        LedgerKey(
            id: row["id"], name: row["name"], createdAt: row["created_at"], expiresAt: row["expires_at"],
            revokedAt: row["revoked_at"], models: (row["models"] as String?).map { $0.split(separator: ",").map(String.init) },
            rateLimitPerMinute: row["rate_limit_per_minute"], teamID: row["team_id"])
    }
}
