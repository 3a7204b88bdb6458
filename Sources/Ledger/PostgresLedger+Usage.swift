import Foundation
import GenerationCore
import PostgresNIO

/// The admin token's hash and the usage events.
extension PostgresLedger {
    /// Events recorded before count one request each. The unique index finds a counted event by its
    /// key, minute, model, dialect and status (it holds no other event).
    static let countedUsageSchema: [PostgresQuery] = [
        "ALTER TABLE usage_event ADD COLUMN requests BIGINT NOT NULL DEFAULT 1, ADD COLUMN counted BOOLEAN NOT NULL DEFAULT FALSE",
        "CREATE UNIQUE INDEX usage_counted ON usage_event (key_id, at, model, dialect, status) WHERE counted",
    ]

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
        try await perform { client, logger in try await client.query(Self.recording(usage), logger: logger) }
    }

    /// The statement that records a usage event.
    static func recording(_ usage: UsageEvent) -> PostgresQuery {
        """
        INSERT INTO usage_event (key_id, model, dialect, status, cost, duration_ms, backend, request_id, at,
                                 upstream_cost, upstream_remaining_credits)
        VALUES (\(usage.keyID), \(usage.model), \(usage.dialect), \(usage.status), \(usage.cost.microCredits),
                \(usage.durationMilliseconds), \(usage.backend), \(usage.requestID), \(usage.at), \(usage.upstreamCost),
                \(usage.upstreamRemainingCredits))
        """
    }

    public func count(_ request: CountedRequest) async throws(LedgerError) {
        try await perform { client, logger in
            try await client.query(
                """
                INSERT INTO usage_event (key_id, model, dialect, status, cost, duration_ms, backend, request_id, at, requests, counted)
                VALUES (\(request.keyID), \(request.model), \(request.dialect), \(request.status), 0, \(request.durationMilliseconds),
                        '', '', \(request.minute), 1, TRUE)
                ON CONFLICT (key_id, at, model, dialect, status) WHERE counted
                DO UPDATE SET requests = usage_event.requests + 1, duration_ms = GREATEST(usage_event.duration_ms, EXCLUDED.duration_ms)
                """, logger: logger)
        }
    }

    public func usage(_ scope: UsageScope, latest limit: Int) async throws(LedgerError) -> [UsageEvent] {
        let (keyID, teamID, limit) = (scope.keyID, scope.teamID, Int64(max(limit, 0)))
        return try await perform { client, logger in
            var events: [UsageEvent] = []
            // The latest first, as the indexes on time give them, then turned back in order.
            for try await row in try await client.query(
                """
                SELECT * FROM (
                    SELECT key_id, model, dialect, status, cost, duration_ms, backend, request_id, at, upstream_cost,
                           upstream_remaining_credits, requests, counted, id
                    FROM usage_event
                    WHERE (\(keyID)::TEXT IS NULL OR key_id = \(keyID))
                          AND (\(teamID)::TEXT IS NULL OR key_id IN (SELECT id FROM api_key WHERE team_id = \(teamID)))
                          AND at >= \(scope.from) AND at < \(scope.to)
                    ORDER BY at DESC, id DESC LIMIT \(limit)
                ) AS latest
                ORDER BY at, id
                """, logger: logger
            ).decode((String, String, String, Int, Int64, Int64, String, String, Int64, String?, String?, Int64, Bool, Int64).self) {
                events.append(
                    UsageEvent(
                        keyID: row.0, model: row.1, dialect: row.2, status: row.3, cost: Credits(microCredits: row.4),
                        durationMilliseconds: row.5, backend: row.6, requestID: row.7, at: row.8,
                        upstreamCost: row.9, upstreamRemainingCredits: row.10, requests: Int(row.11), counted: row.12))
            }
            return events
        }
    }

    public func usageTotals(_ scope: UsageScope, by columns: UsageColumns, cuts: [Timestamp]) async throws(LedgerError) -> [UsageTotal] {
        let (keyID, teamID) = (scope.keyID, scope.teamID)
        let buckets = scope.buckets(cutAt: cuts)
        let (lowers, uppers) = (buckets.map(\.lowerBound), buckets.map(\.upperBound))
        // A column not grouped by is selected as NULL, so that every answer has the same shape.
        let selected = ["key_id", "model", "dialect"].map { columns.names.contains($0) ? "e.\($0)" : "NULL::TEXT" }
        let grouped = columns.names.map { ", e.\($0)" }.joined()
        return try await perform { client, logger in
            var totals: [UsageTotal] = []
            // PostgreSQL sums BIGINTs as NUMERIC, exact past Int64; a counted event stands for its requests.
            for try await row in try await client.query(
                """
                SELECT b.bucket - 1, \(unescaped: selected.joined(separator: ", ")), SUM(e.requests)::BIGINT, SUM(e.cost)::TEXT
                FROM unnest(\(lowers)::BIGINT[], \(uppers)::BIGINT[]) WITH ORDINALITY AS b(lower, upper, bucket)
                JOIN usage_event AS e ON e.at >= b.lower AND e.at < b.upper
                WHERE (\(keyID)::TEXT IS NULL OR e.key_id = \(keyID))
                      AND (\(teamID)::TEXT IS NULL OR e.key_id IN (SELECT id FROM api_key WHERE team_id = \(teamID)))
                GROUP BY b.bucket\(unescaped: grouped)
                """, logger: logger
            ).decode((Int64, String?, String?, String?, Int64, String).self) {
                guard let cost = Int128(row.5) else { throw LedgerError.storage("a sum of costs that is not a whole number: \(row.5)") }
                totals.append(
                    UsageTotal(bucket: Int(row.0), keyID: row.1, model: row.2, dialect: row.3, requests: Int(row.4), microCredits: cost))
            }
            return totals
        }
    }
}
