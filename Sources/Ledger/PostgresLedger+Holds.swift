import Foundation
public import GenerationCore
import Logging
import PostgresNIO

/// Holds: credits reserved for a request, then posted (charged) or voided, kept open while their
/// work runs, expired by the reaper, and charged all the same when the work outlived them.
extension PostgresLedger {
    public func reserve(keyID: String, amount: Credits, expiresAt: Timestamp) async throws(LedgerError) -> Reservation {
        guard amount > .zero else { throw .invalidAmount }
        let hold = HoldID(RandomUUID.timeOrdered(milliseconds: now()))
        // A price past the largest balance (a catalog's extreme price comes out as the largest
        // amount) is covered by none: the statements are not asked to add it up.
        let coverable = amount <= Credits.maximum
        let request = HoldRequest(keyID: keyID, amount: amount.microCredits, holdID: hold.rawValue, expiresAt: expiresAt)
        switch coverable ? try await reserves.submit(request) : nil {
        case .held(let available, let teamAvailable):
            return .held(hold, available: Credits(microCredits: teamAvailable.map { min($0, available) } ?? available))
        case .refused(let spendable):
            return .insufficient(available: Credits(microCredits: spendable))
        case nil:
            break
        }
        // Nothing held: a key that may not spend (the statements hold nothing for one), too few
        // credits, or a rolling budget, which the statements leave to `reserveRolling`.
        guard let key = try await key(id: keyID) else { throw .unknownKey(keyID) }
        guard key.isUsable(at: now()) else { throw .unusableKey(keyID) }
        if coverable, try await hasRollingBudget(keyID: keyID) {
            return try await reserveRolling(keyID: keyID, amount: amount.microCredits, hold: hold, expiresAt: expiresAt)
        }
        return .insufficient(available: try await balance(of: .key(keyID)).spendable)
    }

    public func post(_ hold: HoldID, charge: Credits) async throws(LedgerError) -> Balance {
        try await settle(hold, state: "posted", charge: charge, reason: "charged")
    }

    /// The charge goes through the batched settle statement, the usage event after it: a usage
    /// event that cannot be written is logged, and the charge stands.
    public func post(_ hold: HoldID, charge: Credits, recording usage: UsageEvent) async throws(LedgerError) -> Balance {
        let balance = try await post(hold, charge: charge)
        do {
            try await record(usage)
        } catch {
            logger.error("usage not recorded", metadata: ["request_id": "\(usage.requestID)", "error": "\(error)"])
        }
        return balance
    }

    public func void(_ hold: HoldID, reason: String) async throws(LedgerError) -> Balance {
        try await settle(hold, state: "voided", charge: .zero, reason: reason)
    }

    private func settle(_ hold: HoldID, state: String, charge: Credits, reason: String) async throws(LedgerError) -> Balance {
        let micro = charge.microCredits
        if let settled = try await settles.submit(SettleRequest(holdID: hold.rawValue, state: state, charge: micro, reason: reason)) {
            return settled
        }
        // Nothing moved: say why.
        guard
            let (amount, current) = try await perform({ client, logger in
                try await Self.first(client.query("SELECT amount, state FROM hold WHERE id = \(hold.rawValue)", logger: logger), (Int64, String).self)
            })
        else { throw .unknownHold(hold) }
        // A charge for work that outlived its hold is still made (see `Ledger.post`).
        let late = current == "expired" && state == "posted"
        if current != "open" && !late { throw .holdSettled(hold) }
        if micro < 0 || micro > amount { throw .chargeExceedsHold(hold) }
        if late { return try await chargeLate(hold, charge: charge) }
        throw .storage("hold \(hold) could not be settled")
    }

    public func expireHolds(now: Timestamp) async throws(LedgerError) -> Int {
        // Settled like a batch of voids, so that the keys and teams are locked in the same order
        // as everywhere else; a hold settled or renewed meanwhile is skipped.
        try await perform { client, logger in
            var overdue: [SettleRequest] = []
            for try await id in try await client.query(
                "SELECT id FROM hold WHERE state = 'open' AND expires_at <= \(now)",
                logger: logger
            ).decode(String.self) {
                overdue.append(SettleRequest(holdID: id, state: "expired", charge: 0, reason: "expired"))
            }
            guard !overdue.isEmpty else { return 0 }
            var expired = 0
            for try await _ in try await client.execute(BatchSettleStatement(requests: overdue, now: now), logger: logger) { expired += 1 }
            return expired
        }
    }

    public func openHolds() async throws(LedgerError) -> OpenHolds {
        let row = try await perform { client, logger in
            try await Self.first(
                client.query("SELECT COUNT(*), COALESCE(SUM(amount), 0)::BIGINT FROM hold WHERE state = 'open'", logger: logger),
                (Int64, Int64).self)
        }
        return OpenHolds(count: Int(row?.0 ?? 0), amount: Credits(microCredits: row?.1 ?? 0))
    }

    public func renewHold(_ hold: HoldID, until expiresAt: Timestamp) async throws(LedgerError) -> Bool {
        try await perform { client, logger in
            try await Self.first(
                client.query(
                    """
                    UPDATE hold SET expires_at = GREATEST(expires_at, \(expiresAt)) WHERE id = \(hold.rawValue) AND state = 'open' RETURNING id
                    """, logger: logger), String.self) != nil
        }
    }

    /// Charges an expired hold's work from its key and team directly (`chargeLate(_:charge:at:on:logger:)`).
    func chargeLate(_ hold: HoldID, charge: Credits) async throws(LedgerError) -> Balance {
        let now = now()
        return try await transaction { connection, logger in
            guard let keyID = try await Self.chargeLate(hold, charge: charge.microCredits, at: now, on: connection, logger: logger) else {
                throw LedgerError.holdSettled(hold)
            }
            guard let row = try await Self.first(connection.query(Self.balanceQuery(.key(keyID), now: now), logger: logger), BalanceRow.self) else {
                throw LedgerError.unknownKey(keyID)
            }
            return Self.balance(row)
        }
    }

    /// Charges an expired hold's work from its key and team directly, in the caller's transaction:
    /// their held credits were released when it expired, so only the balances move, below zero if
    /// they must; the charge counts again in the hold's periods, if they are still the ones
    /// counted. Returns the hold's key; nil, with nothing done, if the hold is not expired or the
    /// charge is not within its amount.
    static func chargeLate(
        _ hold: HoldID, charge micro: Int64, at now: Timestamp, on connection: PostgresConnection, logger: Logger
    ) async throws -> String? {
        let reason = lateChargeReason
        guard
            let (keyID, teamID, keyPeriod, teamPeriod) = try await first(
                connection.query(
                    """
                    UPDATE hold SET state = 'posted', charged = \(micro), reason = \(reason), settled_at = \(now)
                    WHERE id = \(hold.rawValue) AND state = 'expired' AND \(micro) BETWEEN 0 AND amount
                    RETURNING key_id, team_id, key_period, team_period
                    """, logger: logger), (String, String?, Int64?, Int64?).self)
        else {
            return nil
        }
        try await connection.query(
            """
            UPDATE balance SET balance = balance - \(micro),
                period_spent = period_spent + CASE WHEN period_start = \(keyPeriod) THEN \(micro) ELSE 0 END
            WHERE key_id = \(keyID)
            """, logger: logger)
        // A charge of nothing moves nothing, and has no entry (as in the other stores).
        if micro > 0 {
            try await connection.query(
                """
                INSERT INTO entry (key_id, kind, amount, hold_id, reason, created_at) VALUES (\(keyID), 'post', \(-micro), \(hold.rawValue), \(reason), \(now))
                """, logger: logger)
        }
        if let teamID, micro > 0 {
            try await connection.query(
                """
                UPDATE team SET balance = balance - \(micro),
                    period_spent = period_spent + CASE WHEN period_start = \(teamPeriod) THEN \(micro) ELSE 0 END
                WHERE id = \(teamID)
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO team_entry (team_id, kind, amount, hold_id, reason, created_at)
                VALUES (\(teamID), 'post', \(-micro), \(hold.rawValue), \(reason), \(now))
                """, logger: logger)
        }
        return keyID
    }
}
