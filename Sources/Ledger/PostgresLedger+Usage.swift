import Foundation
import GenerationCore
import PostgresNIO

/// The admin token's hash and the usage events.
extension PostgresLedger {
    public func storedAdminTokenHash() async throws(LedgerError) -> [UInt8]? {
        try await perform { client, logger in
            let value: Data? = try await Self.first(
                client.query("SELECT value FROM setting WHERE name = 'admin_token_sha256'", logger: logger), Data.self)
            return value.map { [UInt8]($0) }
        }
    }

    public func storeAdminTokenHash(_ hash: [UInt8]) async throws(LedgerError) -> Bool {
        let value = Data(hash)
        return try await perform { client, logger in
            try await Self.first(
                client.query(
                    """
                    INSERT INTO setting (name, value) VALUES ('admin_token_sha256', \(value)) ON CONFLICT DO NOTHING RETURNING name
                    """, logger: logger), String.self) != nil
        }
    }

    public func record(_ usage: UsageEvent) async throws(LedgerError) {
        try await perform { client, logger in
            try await client.query(
                """
                INSERT INTO usage_event (key_id, model, dialect, status, cost, duration_ms, backend, request_id, at,
                                         upstream_cost, upstream_remaining_credits)
                VALUES (\(usage.keyID), \(usage.model), \(usage.dialect), \(usage.status), \(usage.cost.microCredits),
                        \(usage.durationMilliseconds), \(usage.backend), \(usage.requestID), \(usage.at), \(usage.upstreamCost),
                        \(usage.upstreamRemainingCredits))
                """, logger: logger)
        }
    }

    public func usage(keyID: String?, teamID: String?, from: Timestamp, to: Timestamp) async throws(LedgerError) -> [UsageEvent] {
        try await perform { client, logger in
            var events: [UsageEvent] = []
            for try await row in try await client.query(
                """
                SELECT key_id, model, dialect, status, cost, duration_ms, backend, request_id, at, upstream_cost,
                       upstream_remaining_credits
                FROM usage_event
                WHERE (\(keyID)::TEXT IS NULL OR key_id = \(keyID))
                      AND (\(teamID)::TEXT IS NULL OR key_id IN (SELECT id FROM api_key WHERE team_id = \(teamID)))
                      AND at >= \(from) AND at < \(to)
                ORDER BY at, id
                """, logger: logger
            ).decode((String, String, String, Int, Int64, Int64, String, String, Int64, String?, String?).self) {
                events.append(
                    UsageEvent(
                        keyID: row.0, model: row.1, dialect: row.2, status: row.3, cost: Credits(microCredits: row.4),
                        durationMilliseconds: row.5, backend: row.6, requestID: row.7, at: row.8,
                        upstreamCost: row.9, upstreamRemainingCredits: row.10))
            }
            return events
        }
    }
}
