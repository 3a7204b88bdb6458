import Foundation
public import GenerationCore
import GRDB

/// The embedded ledger: one SQLite file in WAL mode. Writes are serialized by SQLite, which makes
/// each check-and-reserve atomic, and committed in groups (`SQLiteGroupCommit`).
///
/// Statements run on the calling thread where they can: a read, or a write that finds no other
/// write under way, takes tens of microseconds, while handing it to another thread and back costs
/// several times that in wake-ups. A WAL read never waits for a writer, and a write waits only for
/// the transaction before it, so the calling thread is held briefly either way.
public final class SQLiteLedger: Ledger {
    private let pool: DatabasePool
    private let writer: SQLiteGroupCommit
    private let recentKeys = RecentKeys()
    let now: @Sendable () -> Timestamp

    /// Opens (creating if needed) the database at `path` and applies the migrations it lacks.
    public init(path: String, now: @escaping @Sendable () -> Timestamp = SQLiteLedger.systemNow) throws(LedgerError) {
        do {
            var configuration = Configuration()
            // Concurrent writers wait for each other rather than failing with SQLITE_BUSY; the
            // group commit keeps that wait off the callers' threads (`SQLiteGroupCommit`).
            configuration.busyMode = .timeout(TimeInterval(Self.busyTimeout.components.seconds))
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrate(pool)
        } catch {
            throw .storage("\(error)")
        }
        writer = SQLiteGroupCommit(pool: pool, busyTimeout: Self.busyTimeout)
        self.now = now
    }

    static let busyTimeout: Duration = .seconds(10)

    public static let systemNow: @Sendable () -> Timestamp = { Timestamp(Date().timeIntervalSince1970 * 1000) }

    /// Two processes opening a new database at once (a server starting while `sdgate keys` runs)
    /// can both find a migration missing; the loser's attempt fails, and a second look finds it applied.
    private static func migrate(_ pool: DatabasePool) throws {
        for attempt in 1...5 {
            do {
                try migrator.migrate(pool)
                return
            } catch where attempt < 5 {
                Thread.sleep(forTimeInterval: 0.05 * Double(attempt))
            }
        }
    }

    // MARK: Keys

    public func createKey(_ key: NewKey) async throws(LedgerError) -> (key: LedgerKey, secret: String) {
        let (id, secret) = APIKeySecret.make()
        let created = LedgerKey(id: id, name: key.name, createdAt: now(), expiresAt: key.expiresAt, revokedAt: nil,
                                models: key.models, rateLimitPerMinute: key.rateLimitPerMinute, teamID: key.teamID)
        try await write { db in
            if let team = key.teamID, try Self.teamRow(db, team) == nil { throw LedgerError.unknownTeam(team) }
            try db.execute(sql: """
                INSERT INTO api_key (id, name, secret_hash, created_at, expires_at, models, rate_limit_per_minute, team_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [id, key.name, Data(APIKeySecret.hash(secret)), created.createdAt, key.expiresAt,
                                 key.models?.joined(separator: ","), key.rateLimitPerMinute, key.teamID])
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
        try await read(oneStatement: true) { db in try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM api_key WHERE id = ?"), arguments: [id]).map(Self.key(from:)) }
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
            try db.execute(sql: "UPDATE api_key SET models = ?, rate_limit_per_minute = ?, expires_at = ? WHERE id = ?",
                           arguments: [models?.joined(separator: ","), rateLimitPerMinute, expiresAt, keyID])
            return db.changesCount
        }
        recentKeys.forget(keyID)
        guard changed == 1, let key = try await key(id: keyID) else { throw .unknownKey(keyID) }
        return key
    }

    private static func key(from row: Row) -> LedgerKey {
        LedgerKey(id: row["id"], name: row["name"], createdAt: row["created_at"], expiresAt: row["expires_at"],
                  revokedAt: row["revoked_at"], models: (row["models"] as String?).map { $0.split(separator: ",").map(String.init) },
                  rateLimitPerMinute: row["rate_limit_per_minute"], teamID: row["team_id"])
    }

    // MARK: Credits

    public func adjust(keyID: String, by amount: Credits, reason: String) async throws(LedgerError) -> Balance {
        try AdjustmentRule.check(amount)
        return try await write { db in
            // A deduction may not take the available balance below zero, nor a top-up the balance past
            // the maximum; the WHERE makes both atomic.
            try db.execute(sql: "UPDATE balance SET balance = balance + ? WHERE key_id = ? AND balance + ? - held >= 0 AND balance + ? <= ?",
                           arguments: [amount.microCredits, keyID, amount.microCredits, amount.microCredits, Credits.maximum.microCredits])
            guard db.changesCount == 1 else {
                throw try Self.balance(db, keyID) == nil ? LedgerError.unknownKey(keyID) : AdjustmentRule.refusal(of: amount)
            }
            try db.execute(sql: "INSERT INTO entry (key_id, kind, amount, reason, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [keyID, amount > .zero ? "topup" : "adjustment", amount.microCredits, reason, self.now()])
            return try Self.balance(db, keyID)!
        }
    }

    public func balance(keyID: String) async throws(LedgerError) -> Balance {
        guard let balance = try await read(oneStatement: true, { db in try Self.balance(db, keyID) }) else { throw .unknownKey(keyID) }
        return balance
    }

    private static func balance(_ db: Database, _ keyID: String) throws -> Balance? {
        try Row.fetchOne(db.cachedStatement(sql: """
            SELECT b.balance, b.held, t.balance - t.held AS team_available
            FROM balance b JOIN api_key k ON k.id = b.key_id LEFT JOIN team t ON t.id = k.team_id WHERE b.key_id = ?
            """), arguments: [keyID]).map {
            Balance(balance: Credits(microCredits: $0["balance"]), held: Credits(microCredits: $0["held"]),
                    teamAvailable: ($0["team_available"] as Int64?).map(Credits.init(microCredits:)))
        }
    }

    public func reserve(keyID: String, amount: Credits, expiresAt: Timestamp) async throws(LedgerError) -> Reservation {
        guard amount > .zero else { throw .invalidAmount }
        let hold = HoldID(RandomUUID.make()), micro = amount.microCredits
        return try await write { db in
            // Authentication may have come from memory (`RecentKeys`): whether the key may spend
            // is decided here, in the transaction that spends.
            guard let member = try Row.fetchOne(db.cachedStatement(sql: "SELECT team_id, revoked_at, expires_at FROM api_key WHERE id = ?"),
                                                arguments: [keyID]) else {
                throw LedgerError.unknownKey(keyID)
            }
            let now = self.now()
            guard LedgerKey.isUsable(revokedAt: member["revoked_at"], expiresAt: member["expires_at"], at: now) else {
                throw LedgerError.unusableKey(keyID)
            }
            let teamID: String? = member["team_id"]
            // Check and reserve in one statement: two requests can never both take the last credits.
            // The transaction makes the key's and the team's holds one step: if the team's budget
            // refuses, the key's hold is taken back before anyone can see it.
            let reserved = try Int64.fetchOne(
                db.cachedStatement(sql: "UPDATE balance SET held = held + ? WHERE key_id = ? AND balance - held >= ? RETURNING balance - held"),
                arguments: [micro, keyID, micro])
            guard var available = reserved else { return .insufficient(available: try Self.balance(db, keyID)?.spendable ?? .zero) }
            if let teamID {
                let teamReserved = try Int64.fetchOne(
                    db.cachedStatement(sql: "UPDATE team SET held = held + ? WHERE id = ? AND balance - held >= ? RETURNING balance - held"),
                    arguments: [micro, teamID, micro])
                guard let teamAvailable = teamReserved else {
                    try db.cachedStatement(sql: "UPDATE balance SET held = held - ? WHERE key_id = ?").execute(arguments: [micro, keyID])
                    return .insufficient(available: try Self.balance(db, keyID)?.spendable ?? .zero)
                }
                available = min(available, teamAvailable)
            }
            try db.cachedStatement(sql: "INSERT INTO hold (id, key_id, team_id, amount, state, expires_at, created_at) VALUES (?, ?, ?, ?, 'open', ?, ?)")
                .execute(arguments: [hold.rawValue, keyID, teamID, micro, expiresAt, now])
            return .held(hold, available: Credits(microCredits: available))
        }
    }

    public func post(_ hold: HoldID, charge: Credits) async throws(LedgerError) -> Balance {
        try await settle(hold, state: "posted", charge: charge, reason: "charged")
    }

    public func post(_ hold: HoldID, charge: Credits, recording usage: UsageEvent) async throws(LedgerError) -> Balance {
        try await settle(hold, state: "posted", charge: charge, reason: "charged", recording: usage)
    }

    public func void(_ hold: HoldID, reason: String) async throws(LedgerError) -> Balance {
        try await settle(hold, state: "voided", charge: .zero, reason: reason)
    }

    public func renewHold(_ hold: HoldID, until expiresAt: Timestamp) async throws(LedgerError) -> Bool {
        try await write { db in
            try db.cachedStatement(sql: "UPDATE hold SET expires_at = MAX(expires_at, ?) WHERE id = ? AND state = 'open'")
                .execute(arguments: [expiresAt, hold.rawValue])
            return db.changesCount == 1
        }
    }

    private func settle(_ hold: HoldID, state: String, charge: Credits, reason: String,
                        recording usage: UsageEvent? = nil) async throws(LedgerError) -> Balance {
        try await write { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, key_id, team_id, amount, state FROM hold WHERE id = ?"),
                                             arguments: [hold.rawValue]) else {
                throw LedgerError.unknownHold(hold)
            }
            // A charge for work that outlived its hold is still made: nothing released, all charged.
            let late = state == "posted" && row["state"] as String == "expired"
            guard row["state"] as String == "open" || late else { throw LedgerError.holdSettled(hold) }
            guard charge.microCredits >= 0, charge.microCredits <= row["amount"] as Int64 else { throw LedgerError.chargeExceedsHold(hold) }
            let balance = try Self.close(db, hold: row, as: state, charge: charge.microCredits, reason: late ? Self.lateChargeReason : reason,
                                         at: self.now(), releasing: late ? 0 : row["amount"])
            if let usage { try Self.insert(usage, db) }
            return balance
        }
    }

    /// Settles one hold (a row with its id, key_id, team_id and amount): releases `releasing` (its
    /// amount, or nothing for a hold that expired already) from the key and its team and, for a
    /// charge, writes their post entries.
    @discardableResult
    private static func close(_ db: Database, hold: Row, as state: String, charge: Int64, reason: String, at: Timestamp,
                              releasing amount: Int64) throws -> Balance {
        let id: String = hold["id"], keyID: String = hold["key_id"], teamID: String? = hold["team_id"]
        try db.cachedStatement(sql: "UPDATE hold SET state = ?, charged = ?, reason = ?, settled_at = ? WHERE id = ?")
            .execute(arguments: [state, charge, reason, at, id])
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "UPDATE balance SET held = held - ?, balance = balance - ? WHERE key_id = ? RETURNING balance, held"),
            arguments: [amount, charge, keyID])
        if charge > 0 {
            try db.cachedStatement(sql: "INSERT INTO entry (key_id, kind, amount, hold_id, reason, created_at) VALUES (?, 'post', ?, ?, ?, ?)")
                .execute(arguments: [keyID, -charge, id, reason, at])
        }
        var teamAvailable: Int64?
        if let teamID {
            teamAvailable = try Int64.fetchOne(
                db.cachedStatement(sql: "UPDATE team SET held = held - ?, balance = balance - ? WHERE id = ? RETURNING balance - held"),
                arguments: [amount, charge, teamID])
            if charge > 0 {
                try db.cachedStatement(sql: "INSERT INTO team_entry (team_id, kind, amount, hold_id, reason, created_at) VALUES (?, 'post', ?, ?, ?, ?)")
                    .execute(arguments: [teamID, -charge, id, reason, at])
            }
        }
        return Balance(balance: Credits(microCredits: row?["balance"] ?? 0), held: Credits(microCredits: row?["held"] ?? 0),
                       teamAvailable: teamAvailable.map(Credits.init(microCredits:)))
    }

    public func expireHolds(now: Timestamp) async throws(LedgerError) -> Int {
        try await write { db in
            let overdue = try Row.fetchAll(db, sql: "SELECT id, key_id, team_id, amount FROM hold WHERE state = 'open' AND expires_at <= ?",
                                           arguments: [now])
            for row in overdue { try Self.close(db, hold: row, as: "expired", charge: 0, reason: "expired", at: now, releasing: row["amount"]) }
            return overdue.count
        }
    }

    public func openHolds() async throws(LedgerError) -> OpenHolds {
        try await read { db in
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS count, COALESCE(SUM(amount), 0) AS amount FROM hold WHERE state = 'open'")
            return OpenHolds(count: row?["count"] ?? 0, amount: Credits(microCredits: row?["amount"] ?? 0))
        }
    }

    public func verify() async throws(LedgerError) -> [String] {
        try await read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT b.key_id, b.balance, b.held,
                       COALESCE((SELECT SUM(amount) FROM entry e WHERE e.key_id = b.key_id), 0) AS from_entries,
                       COALESCE((SELECT SUM(amount) FROM hold h WHERE h.key_id = b.key_id AND h.state = 'open'), 0) AS from_holds,
                       COALESCE((SELECT SUM(charged) FROM hold h WHERE h.key_id = b.key_id AND h.state = 'posted'), 0) AS charged,
                       COALESCE((SELECT -SUM(amount) FROM entry e WHERE e.key_id = b.key_id AND e.kind = 'post'), 0) AS posted
                FROM balance b
                UNION ALL
                SELECT t.id, t.balance, t.held,
                       COALESCE((SELECT SUM(amount) FROM team_entry e WHERE e.team_id = t.id), 0),
                       COALESCE((SELECT SUM(amount) FROM hold h WHERE h.team_id = t.id AND h.state = 'open'), 0),
                       COALESCE((SELECT SUM(charged) FROM hold h WHERE h.team_id = t.id AND h.state = 'posted'), 0),
                       COALESCE((SELECT -SUM(amount) FROM team_entry e WHERE e.team_id = t.id AND e.kind = 'post'), 0)
                FROM team t
                ORDER BY 1
                """)
            return rows.flatMap { (row: Row) -> [String] in
                let account: String = row["key_id"]
                let balance: Int64 = row["balance"], fromEntries: Int64 = row["from_entries"]
                let held: Int64 = row["held"], fromHolds: Int64 = row["from_holds"]
                let charged: Int64 = row["charged"], posted: Int64 = row["posted"]
                return BalanceAudit(account: account, balance: balance, fromEntries: fromEntries, held: held, fromHolds: fromHolds,
                                    charged: charged, posted: posted).problems
            }
        }
    }

    // MARK: Settings

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

    // MARK: Usage

    public func record(_ usage: UsageEvent) async throws(LedgerError) {
        try await write { db in try Self.insert(usage, db) }
    }

    private static func insert(_ usage: UsageEvent, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO usage_event (key_id, model, status, cost, duration_ms, backend, request_id, at,
                                     upstream_cost, upstream_remaining_credits)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [usage.keyID, usage.model, usage.status, usage.cost.microCredits, usage.durationMilliseconds,
                                     usage.backend, usage.requestID, usage.at, usage.upstreamCost, usage.upstreamRemainingCredits])
    }

    public func usage(keyID: String?, teamID: String?, from: Timestamp, to: Timestamp) async throws(LedgerError) -> [UsageEvent] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM usage_event
                WHERE (? IS NULL OR key_id = ?) AND (? IS NULL OR key_id IN (SELECT id FROM api_key WHERE team_id = ?))
                      AND at >= ? AND at < ?
                ORDER BY at, id
                """, arguments: [keyID, keyID, teamID, teamID, from, to]).map { row in
                UsageEvent(keyID: row["key_id"], model: row["model"], status: row["status"], cost: Credits(microCredits: row["cost"]),
                           durationMilliseconds: row["duration_ms"], backend: row["backend"], requestID: row["request_id"], at: row["at"],
                           upstreamCost: row["upstream_cost"], upstreamRemainingCredits: row["upstream_remaining_credits"])
            }
        }
    }

    // MARK: Access

    /// Reads on this thread (GRDB's synchronous read). Every read goes this way, so no reader
    /// connection is ever held across a suspension (with a few held so, readers blocked here could
    /// wait on tasks that need this very thread). A read of `oneStatement`, which SQLite makes atomic
    /// by itself, skips the transaction whose `BEGIN` and `COMMIT` GRDB prepares anew each time.
    func read<T: Sendable>(oneStatement: Bool = false, _ body: @escaping @Sendable (Database) throws -> T) async throws(LedgerError) -> T {
        do {
            return try oneStatement ? readHere(unsafe: body) : readHere(body)
        } catch let error as LedgerError {
            throw error
        } catch {
            throw .storage("\(error)")
        }
    }

    private func readHere<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }

    private func readHere<T>(unsafe body: (Database) throws -> T) throws -> T {
        try pool.unsafeRead(body)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(LedgerError) -> T {
        do {
            return try await writer.write(body)
        } catch let error as LedgerError {
            throw error
        } catch {
            throw .storage("\(error)")
        }
    }
}
