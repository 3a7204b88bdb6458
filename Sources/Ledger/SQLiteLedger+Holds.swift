import Foundation
import GRDB
public import GenerationCore

/// Holds: credits reserved for a request, then posted (charged) or voided, or expired by the reaper.
extension SQLiteLedger {
    /// The texts of the statements every reserve and settle runs, made once: a statement is found
    /// in the connection's cache by its text, and making the text anew each time (the budget
    /// columns joined into it) cost a twentieth of the ledger's time.
    private static let reservingSQL = """
        SELECT k.team_id, k.revoked_at, k.expires_at, b.balance, b.held, \(budgetColumns("b")),
               t.balance AS team_balance, t.held AS team_held, \(budgetColumns("t", as: "team_"))
        FROM api_key k JOIN balance b ON b.key_id = k.id LEFT JOIN team t ON t.id = k.team_id WHERE k.id = ?
        """
    private static let closingKeySQL = """
        UPDATE balance SET held = held - ?, balance = balance - ?,
            period_spent = period_spent + CASE WHEN period_start = ? THEN ? ELSE 0 END
        WHERE key_id = ? RETURNING balance, held, \(budgetColumns("balance"))
        """
    private static let closingTeamSQL = """
        UPDATE team SET held = held - ?, balance = balance - ?,
            period_spent = period_spent + CASE WHEN period_start = ? THEN ? ELSE 0 END
        WHERE id = ? RETURNING balance - held AS team_available, \(budgetColumns("team", as: "team_"))
        """

    public func reserve(keyID: String, amount: Credits, expiresAt: Timestamp) async throws(LedgerError) -> Reservation {
        guard amount > .zero else { throw .invalidAmount }
        let hold = HoldID(RandomUUID.timeOrdered(milliseconds: now())), micro = amount.microCredits
        return try await write { db in
            // Authentication may have come from memory (`RecentKeys`): whether the key may spend
            // is decided here, in the transaction that spends.
            guard
                let member = try StatementRow.fetchOne(db.cachedStatement(sql: Self.reservingSQL), arguments: [keyID])
            else {
                throw LedgerError.unknownKey(keyID)
            }
            let now = self.now()
            guard LedgerKey.isUsable(revokedAt: member["revoked_at"], expiresAt: member["expires_at"], at: now) else {
                throw LedgerError.unusableKey(keyID)
            }
            // A price past the largest balance (a catalog's extreme price comes out as the largest
            // amount) is covered by none; below it, the subtractions stay within 64 bits for an
            // account in debt too.
            guard micro <= Credits.maximum.microCredits else {
                return .insufficient(available: try Self.balance(db, .key(keyID), at: now)?.spendable ?? .zero)
            }
            let teamID: String? = member["team_id"]
            // The transaction is the atomic step (SQLite runs one writer at a time): the key's and
            // the team's balances and periodic budgets are read, checked and held together, so two
            // requests can never both take the last credits of either.
            var available = (member["balance"] as Int64) - (member["held"] as Int64) - micro
            if teamID != nil { available = min(available, (member["team_balance"] as Int64) - (member["team_held"] as Int64) - micro) }
            let own = try Self.count(member, of: .key(keyID), db, at: now).reserving(micro, at: now)
            let team: (count: PeriodCount, period: Timestamp?)? =
                try teamID.map { try Self.count(member, prefix: "team_", of: .team($0), db, at: now).reserving(micro, at: now) }
                ?? (PeriodCount(), nil)
            guard available >= 0, let own, let team else {
                return .insufficient(available: try Self.balance(db, .key(keyID), at: now)?.spendable ?? .zero)
            }
            try db.cachedStatement(sql: "UPDATE balance SET held = held + ?, period_start = ?, period_spent = ? WHERE key_id = ?")
                .execute(arguments: [micro, own.count.countedPeriod, own.count.spent, keyID])
            if let teamID {
                try db.cachedStatement(sql: "UPDATE team SET held = held + ?, period_start = ?, period_spent = ? WHERE id = ?")
                    .execute(arguments: [micro, team.count.countedPeriod, team.count.spent, teamID])
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO hold (id, key_id, team_id, amount, state, expires_at, created_at, key_period, team_period)
                    VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?)
                    """
            )
            .execute(arguments: [hold.rawValue, keyID, teamID, micro, expiresAt, now, own.period, team.period])
            // What is left is known from what was read and held, without reading it back; a rolling
            // window's sum must be read again to count the hold just made.
            guard own.count.budget?.rolling != true, team.count.budget?.rolling != true else {
                return .held(hold, available: try Self.balance(db, .key(keyID), at: now)?.spendable ?? .zero)
            }
            let after = Balance(
                balance: Credits(microCredits: member["balance"]), held: Credits(microCredits: (member["held"] as Int64) + micro),
                teamAvailable: teamID.map { _ in Credits(microCredits: (member["team_balance"] as Int64) - (member["team_held"] as Int64) - micro) },
                period: own.count.spending(at: now), teamPeriod: team.count.spending(at: now))
            return .held(hold, available: after.spendable)
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

    private func settle(
        _ hold: HoldID, state: String, charge: Credits, reason: String,
        recording usage: UsageEvent? = nil
    ) async throws(LedgerError) -> Balance {
        try await write { db in
            let balance = try Self.settle(hold, as: state, charge: charge, reason: reason, at: self.now(), in: db)
            if let usage { try Self.insert(usage, db) }
            return balance
        }
    }

    /// Posts (`state` "posted") or voids an open hold in `db`, or posts late a hold that expired;
    /// throws, having written nothing, for a hold unknown, settled already, or charged past its amount.
    static func settle(_ hold: HoldID, as state: String, charge: Credits, reason: String, at: Timestamp, in db: Database) throws -> Balance {
        guard
            let row = try StatementRow.fetchOne(
                db.cachedStatement(sql: "SELECT id, key_id, team_id, amount, state, key_period, team_period FROM hold WHERE id = ?"),
                arguments: [hold.rawValue])
        else {
            throw LedgerError.unknownHold(hold)
        }
        // A charge for work that outlived its hold is still made: nothing released, all charged.
        let late = state == "posted" && row["state"] as String == "expired"
        guard row["state"] as String == "open" || late else { throw LedgerError.holdSettled(hold) }
        guard charge.microCredits >= 0, charge.microCredits <= row["amount"] as Int64 else { throw LedgerError.chargeExceedsHold(hold) }
        return try close(
            db, hold: row, as: state, charge: charge.microCredits, reason: late ? lateChargeReason : reason, at: at,
            releasing: late ? 0 : row["amount"])
    }

    /// Settles one hold (a row with its id, key_id, team_id, amount, key_period and team_period):
    /// releases `releasing` (its amount, or nothing for a hold that expired already) from the key
    /// and its team and, for a charge, writes their post entries. The periods the hold counts in
    /// gain the charge and lose what is released, if they are still the ones counted.
    @discardableResult
    private static func close(
        _ db: Database, hold: some NamedColumns, as state: String, charge: Int64, reason: String, at: Timestamp,
        releasing amount: Int64
    ) throws -> Balance {
        let id: String = hold["id"], keyID: String = hold["key_id"], teamID: String? = hold["team_id"]
        try db.cachedStatement(sql: "UPDATE hold SET state = ?, charged = ?, reason = ?, settled_at = ? WHERE id = ?")
            .execute(arguments: [state, charge, reason, at, id])
        // Each account's totals and budget come back from its update: the balance answered is read
        // in the same statements that settle.
        guard
            let key = try StatementRow.fetchOne(
                db.cachedStatement(sql: closingKeySQL), arguments: [amount, charge, hold["key_period"] as Int64?, charge - amount, keyID])
        else { throw LedgerError.unknownKey(keyID) }
        if charge > 0 {
            try db.cachedStatement(sql: "INSERT INTO entry (key_id, kind, amount, hold_id, reason, created_at) VALUES (?, 'post', ?, ?, ?, ?)")
                .execute(arguments: [keyID, -charge, id, reason, at])
        }
        var team: StatementRow?
        if let teamID {
            team = try StatementRow.fetchOne(
                db.cachedStatement(sql: closingTeamSQL), arguments: [amount, charge, hold["team_period"] as Int64?, charge - amount, teamID])
            if charge > 0 {
                try db.cachedStatement(
                    sql: "INSERT INTO team_entry (team_id, kind, amount, hold_id, reason, created_at) VALUES (?, 'post', ?, ?, ?, ?)"
                )
                .execute(arguments: [teamID, -charge, id, reason, at])
            }
        }
        return Balance(
            balance: Credits(microCredits: key["balance"]), held: Credits(microCredits: key["held"]),
            teamAvailable: (team?["team_available"] as Int64?).map(Credits.init(microCredits:)),
            period: try count(key, of: .key(keyID), db, at: at).spending(at: at),
            teamPeriod: try teamID.flatMap { id in try team.map { try count($0, prefix: "team_", of: .team(id), db, at: at) }?.spending(at: at) })
    }

    public func expireHolds(now: Timestamp) async throws(LedgerError) -> Int {
        try await write { db in
            let overdue = try Row.fetchAll(
                db, sql: "SELECT id, key_id, team_id, amount, key_period, team_period FROM hold WHERE state = 'open' AND expires_at <= ?",
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
}
