import Foundation
import GRDB
import GenerationCore

/// Usage events, and the admin token's hash.
extension SQLiteLedger {
    /// Every key's latest events and a window's totals read the window's rows alone, not the whole
    /// history (a key's use `usage_by_key_and_time`).
    static let usageByTimeSchema = "CREATE INDEX usage_by_time ON usage_event (at)"

    /// Events recorded before count one request each. The unique index finds a counted event by its
    /// key, minute, model, dialect and status (it holds no other event).
    static let countedUsageSchema = """
        ALTER TABLE usage_event ADD COLUMN requests INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE usage_event ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;
        CREATE UNIQUE INDEX usage_counted ON usage_event (key_id, at, model, dialect, status) WHERE counted;
        """

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

    public func count(_ request: CountedRequest) async throws(LedgerError) {
        try await write { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO usage_event (key_id, model, dialect, status, cost, duration_ms, backend, request_id, at, requests, counted)
                    VALUES (?, ?, ?, ?, 0, ?, '', '', ?, 1, 1)
                    ON CONFLICT (key_id, at, model, dialect, status) WHERE counted
                    DO UPDATE SET requests = requests + 1, duration_ms = max(duration_ms, excluded.duration_ms)
                    """
            ).execute(arguments: [
                request.keyID, request.model, request.dialect, request.status, request.durationMilliseconds, request.minute,
            ])
        }
    }

    public func usage(_ scope: UsageScope, latest limit: Int) async throws(LedgerError) -> [UsageEvent] {
        let (filter, arguments) = Self.filter(scope)
        return try await read { db in
            // The latest first, as the indexes on time give them, then turned back in order.
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM (SELECT * FROM usage_event WHERE at >= ? AND at < ?\(filter) ORDER BY at DESC, id DESC LIMIT ?)
                    ORDER BY at, id
                    """, arguments: [scope.from, scope.to] + arguments + [max(limit, 0)]
            ).map { row in
                UsageEvent(
                    keyID: row["key_id"], model: row["model"], dialect: row["dialect"], status: row["status"],
                    cost: Credits(microCredits: row["cost"]), durationMilliseconds: row["duration_ms"], backend: row["backend"],
                    requestID: row["request_id"], at: row["at"], upstreamCost: row["upstream_cost"],
                    upstreamRemainingCredits: row["upstream_remaining_credits"], requests: row["requests"], counted: row["counted"])
            }
        }
    }

    public func usageTotals(_ scope: UsageScope, by columns: UsageColumns, cuts: [Timestamp]) async throws(LedgerError) -> [UsageTotal] {
        let (filter, arguments) = Self.filter(scope, keyColumn: "e.key_id")
        let grouped = columns.names.map { ", e.\($0)" }.joined()
        let buckets = "[" + scope.buckets(cutAt: cuts).map { "[\($0.lowerBound),\($0.upperBound)]" }.joined(separator: ",") + "]"
        return try await read { db in
            // Each bucket, in order (CROSS JOIN), reads its own range of an index on time; a counted
            // event stands for its requests. SQLite's SUM fails past Int64, so the costs' high and low
            // 32 bits are summed apart: each sum stays inside Int64 for 2^31 events of one group at
            // the least (past that, an error, never a wrong total).
            try Row.fetchAll(
                db,
                sql: """
                    SELECT b.key AS bucket\(grouped), SUM(e.requests) AS requests, SUM(e.cost >> 32) AS high, SUM(e.cost & 4294967295) AS low
                    FROM json_each(?) AS b CROSS JOIN usage_event AS e
                    WHERE e.at >= json_extract(b.value, '$[0]') AND e.at < json_extract(b.value, '$[1]')\(filter)
                    GROUP BY b.key\(grouped)
                    """, arguments: [buckets] + arguments
            ).map { row in
                UsageTotal(
                    bucket: row["bucket"], keyID: columns.contains(.key) ? row["key_id"] : nil,
                    model: columns.contains(.model) ? row["model"] : nil, dialect: columns.contains(.dialect) ? row["dialect"] : nil,
                    requests: row["requests"], microCredits: Int128(row["high"] as Int64) << 32 + Int128(row["low"] as Int64))
            }
        }
    }

    /// The conditions on `key_id` that a scope adds: only those it names, so that a key's events
    /// are read from its own index.
    private static func filter(_ scope: UsageScope, keyColumn: String = "key_id") -> (sql: String, arguments: StatementArguments) {
        var sql = "", arguments: StatementArguments = []
        if let keyID = scope.keyID {
            sql += " AND \(keyColumn) = ?"
            arguments += [keyID]
        }
        if let teamID = scope.teamID {
            sql += " AND \(keyColumn) IN (SELECT id FROM api_key WHERE team_id = ?)"
            arguments += [teamID]
        }
        return (sql, arguments)
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
