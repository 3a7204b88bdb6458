import Foundation
import GenerationCore
import PostgresNIO

/// API keys in PostgreSQL: only each secret's SHA-256 is stored.
extension PostgresLedger {
    public func createKey(_ key: NewKey) async throws(LedgerError) -> (key: LedgerKey, secret: String) {
        let (id, secret) = APIKeySecret.make()
        let created = LedgerKey(
            id: id, name: key.name, createdAt: now(), expiresAt: key.expiresAt, revokedAt: nil,
            models: key.models, rateLimitPerMinute: key.rateLimitPerMinute, teamID: key.teamID)
        let hash = Data(APIKeySecret.hash(secret)), models = key.models?.joined(separator: ",")
        try await transaction { connection, logger in
            if let team = key.teamID,
                try await Self.first(connection.query("SELECT id FROM team WHERE id = \(team)", logger: logger), String.self) == nil
            {
                throw LedgerError.unknownTeam(team)
            }
            try await connection.query(
                """
                INSERT INTO api_key (id, name, secret_hash, created_at, expires_at, models, rate_limit_per_minute, team_id)
                VALUES (\(id), \(key.name), \(hash), \(created.createdAt), \(key.expiresAt), \(models), \(key.rateLimitPerMinute), \(key.teamID))
                """, logger: logger)
            try await connection.query("INSERT INTO balance (key_id, balance, held) VALUES (\(id), 0, 0)", logger: logger)
        }
        return (created, secret)
    }

    private static let keyColumns: PostgresQuery = """
        SELECT id, name, created_at, expires_at, revoked_at, models, rate_limit_per_minute, secret_hash, team_id FROM api_key
        """

    private typealias KeyRow = (String, String, Int64, Int64?, Int64?, String?, Int?, Data, String?)

    private static func key(_ row: KeyRow) -> LedgerKey {
        LedgerKey(
            id: row.0, name: row.1, createdAt: row.2, expiresAt: row.3, revokedAt: row.4,
            models: row.5.map { $0.split(separator: ",").map(String.init) }, rateLimitPerMinute: row.6, teamID: row.8)
    }

    private func keyRows(where condition: String, _ value: String?) async throws(LedgerError) -> [KeyRow] {
        try await perform { client, logger in
            var query = Self.keyColumns
            if let value {
                query = PostgresQuery(
                    unsafeSQL: query.sql + " WHERE \(condition) = $1",
                    binds: {
                        var binds = PostgresBindings(); binds.append(value); return binds
                    }())
            } else {
                query = PostgresQuery(unsafeSQL: query.sql + " ORDER BY created_at, id")
            }
            var rows: [KeyRow] = []
            for try await row in try await client.query(query, logger: logger).decode(KeyRow.self) { rows.append(row) }
            return rows
        }
    }

    public func key(secret: String) async throws(LedgerError) -> LedgerKey? {
        try await recentKeys.key(secret: secret) { (id: String) throws(LedgerError) in
            try await keyRows(where: "id", id).first.map { (Self.key($0), Array($0.7)) }
        }
    }

    public func key(id: String) async throws(LedgerError) -> LedgerKey? {
        try await keyRows(where: "id", id).first.map(Self.key)
    }

    public func keys() async throws(LedgerError) -> [LedgerKey] {
        try await keyRows(where: "", nil).map(Self.key)
    }

    public func revoke(keyID: String) async throws(LedgerError) {
        let now = now()
        let found = try await perform { client, logger in
            try await Self.first(
                client.query(
                    "UPDATE api_key SET revoked_at = COALESCE(revoked_at, \(now)) WHERE id = \(keyID) RETURNING id",
                    logger: logger), String.self)
        }
        recentKeys.forget(keyID)
        if found == nil { throw .unknownKey(keyID) }
    }

    public func setLimits(keyID: String, models: [String]?, rateLimitPerMinute: Int?, expiresAt: Timestamp?) async throws(LedgerError) -> LedgerKey {
        let joined = models?.joined(separator: ",")
        let found = try await perform { client, logger in
            try await Self.first(
                client.query(
                    """
                    UPDATE api_key SET models = \(joined), rate_limit_per_minute = \(rateLimitPerMinute), expires_at = \(expiresAt)
                    WHERE id = \(keyID) RETURNING id
                    """, logger: logger), String.self)
        }
        recentKeys.forget(keyID)
        guard found != nil, let key = try await key(id: keyID) else { throw .unknownKey(keyID) }
        return key
    }
}
