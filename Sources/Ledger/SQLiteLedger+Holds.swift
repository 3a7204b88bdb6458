import Foundation
import GRDB
public import GenerationCore

/// Holds: credits reserved for a request, then posted (charged) or voided, or expired by the reaper.
extension SQLiteLedger {
    public func reserve(keyID: String, amount: Credits, expiresAt: Timestamp) async throws(LedgerError) -> Reservation {
        guard amount > .zero else { throw .invalidAmount }
        let hold = HoldID(RandomUUID.make()), micro = amount.microCredits
        return try await write { db in
            // Authentication may have come from memory (`RecentKeys`): whether the key may spend
            // is decided here, in the transaction that spends.
            guard
                let member = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT team_id, revoked_at, expires_at FROM api_key WHERE id = ?"),
                    arguments: [keyID])
            else {
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
            guard var available = reserved else { return .insufficient(available: try Self.balance(db, .key(keyID))?.spendable ?? .zero) }
            if let teamID {
                let teamReserved = try Int64.fetchOne(
                    db.cachedStatement(sql: "UPDATE team SET held = held + ? WHERE id = ? AND balance - held >= ? RETURNING balance - held"),
                    arguments: [micro, teamID, micro])
                guard let teamAvailable = teamReserved else {
                    try db.cachedStatement(sql: "UPDATE balance SET held = held - ? WHERE key_id = ?").execute(arguments: [micro, keyID])
                    return .insufficient(available: try Self.balance(db, .key(keyID))?.spendable ?? .zero)
                }
                available = min(available, teamAvailable)
            }
            try db.cachedStatement(
                sql: "INSERT INTO hold (id, key_id, team_id, amount, state, expires_at, created_at) VALUES (?, ?, ?, ?, 'open', ?, ?)"
            )
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

    private func settle(
        _ hold: HoldID, state: String, charge: Credits, reason: String,
        recording usage: UsageEvent? = nil
    ) async throws(LedgerError) -> Balance {
        try await write { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT id, key_id, team_id, amount, state FROM hold WHERE id = ?"),
                    arguments: [hold.rawValue])
            else {
                throw LedgerError.unknownHold(hold)
            }
            // A charge for work that outlived its hold is still made: nothing released, all charged.
            let late = state == "posted" && row["state"] as String == "expired"
            guard row["state"] as String == "open" || late else { throw LedgerError.holdSettled(hold) }
            guard charge.microCredits >= 0, charge.microCredits <= row["amount"] as Int64 else { throw LedgerError.chargeExceedsHold(hold) }
            let balance = try Self.close(
                db, hold: row, as: state, charge: charge.microCredits, reason: late ? Self.lateChargeReason : reason,
                at: self.now(), releasing: late ? 0 : row["amount"])
            if let usage { try Self.insert(usage, db) }
            return balance
        }
    }

    /// Settles one hold (a row with its id, key_id, team_id and amount): releases `releasing` (its
    /// amount, or nothing for a hold that expired already) from the key and its team and, for a
    /// charge, writes their post entries.
    @discardableResult
    private static func close(
        _ db: Database, hold: Row, as state: String, charge: Int64, reason: String, at: Timestamp,
        releasing amount: Int64
    ) throws -> Balance {
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
                try db.cachedStatement(
                    sql: "INSERT INTO team_entry (team_id, kind, amount, hold_id, reason, created_at) VALUES (?, 'post', ?, ?, ?, ?)"
                )
                .execute(arguments: [teamID, -charge, id, reason, at])
            }
        }
        return Balance(
            balance: Credits(microCredits: row?["balance"] ?? 0), held: Credits(microCredits: row?["held"] ?? 0),
            teamAvailable: teamAvailable.map(Credits.init(microCredits:)))
    }

    public func expireHolds(now: Timestamp) async throws(LedgerError) -> Int {
        try await write { db in
            let overdue = try Row.fetchAll(
                db, sql: "SELECT id, key_id, team_id, amount FROM hold WHERE state = 'open' AND expires_at <= ?",
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
