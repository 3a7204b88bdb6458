import Foundation
import GenerationCore
import PostgresNIO

/// Holds kept open while their work runs, and the charge of work that outlived its hold.
extension PostgresLedger {
    public func renewHold(_ hold: HoldID, until expiresAt: Timestamp) async throws(LedgerError) -> Bool {
        try await perform { client, logger in
            try await Self.first(client.query("""
                UPDATE hold SET expires_at = GREATEST(expires_at, \(expiresAt)) WHERE id = \(hold.rawValue) AND state = 'open' RETURNING id
                """, logger: logger), String.self) != nil
        }
    }

    /// Charges an expired hold's work from its key and team directly: their held credits were
    /// released when it expired, so only the balances move, below zero if they must.
    func chargeLate(_ hold: HoldID, charge: Credits) async throws(LedgerError) -> Balance {
        let micro = charge.microCredits, now = now(), reason = Self.lateChargeReason
        return try await transaction { connection, logger in
            guard let (keyID, teamID) = try await Self.first(connection.query("""
                UPDATE hold SET state = 'posted', charged = \(micro), reason = \(reason), settled_at = \(now)
                WHERE id = \(hold.rawValue) AND state = 'expired' AND \(micro) BETWEEN 0 AND amount RETURNING key_id, team_id
                """, logger: logger), (String, String?).self) else {
                throw LedgerError.holdSettled(hold)
            }
            guard let (balance, held) = try await Self.first(connection.query("""
                UPDATE balance SET balance = balance - \(micro) WHERE key_id = \(keyID) RETURNING balance, held
                """, logger: logger), (Int64, Int64).self) else {
                throw LedgerError.unknownKey(keyID)
            }
            try await connection.query("""
                INSERT INTO entry (key_id, kind, amount, hold_id, reason, created_at) VALUES (\(keyID), 'post', \(-micro), \(hold.rawValue), \(reason), \(now))
                """, logger: logger)
            var teamAvailable: Int64?
            if let teamID {
                teamAvailable = try await Self.first(connection.query("""
                    UPDATE team SET balance = balance - \(micro) WHERE id = \(teamID) RETURNING balance - held
                    """, logger: logger), Int64.self)
                try await connection.query("""
                    INSERT INTO team_entry (team_id, kind, amount, hold_id, reason, created_at)
                    VALUES (\(teamID), 'post', \(-micro), \(hold.rawValue), \(reason), \(now))
                    """, logger: logger)
            }
            return Balance(balance: Credits(microCredits: balance), held: Credits(microCredits: held),
                           teamAvailable: teamAvailable.map(Credits.init(microCredits:)))
        }
    }
}
