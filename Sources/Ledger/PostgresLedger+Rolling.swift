import GenerationCore
import PostgresNIO

/// Reserves for a key whose budget, or whose team's, is a rolling window. A window keeps no count
/// on the account's row: what it has spent is summed from its holds. A single statement reads its
/// snapshot before it waits for a row lock, and so could miss a hold that the lock's previous
/// holder committed; the batched statements therefore leave these reserves alone, and this
/// transaction takes the locks first (the key's row, then its team's, in the statements' order)
/// and only then reads the balances and sums the windows, in statements that see everything
/// committed before them.
extension PostgresLedger {
    /// Whether the key's budget, or its team's, is a rolling window.
    func hasRollingBudget(keyID: String) async throws(LedgerError) -> Bool {
        try await perform { client, logger in
            try await Self.first(
                client.query(
                    """
                    SELECT b.budget_rolling OR COALESCE(t.budget_rolling, false)
                    FROM balance b JOIN api_key k ON k.id = b.key_id LEFT JOIN team t ON t.id = k.team_id WHERE b.key_id = \(keyID)
                    """, logger: logger), Bool.self) ?? false
        }
    }

    func reserveRolling(keyID: String, amount micro: Int64, hold: HoldID, expiresAt: Timestamp) async throws(LedgerError) -> Reservation {
        let now = now()
        return try await transaction { connection, logger in
            guard
                let teamID = try await Self.first(
                    connection.query(
                        """
                        SELECT k.team_id FROM balance b JOIN api_key k ON k.id = b.key_id
                        WHERE b.key_id = \(keyID) AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > \(now)) FOR UPDATE OF b
                        """, logger: logger), String?.self)
            else { throw LedgerError.unusableKey(keyID) }
            if let teamID { try await connection.query("SELECT id FROM team WHERE id = \(teamID) FOR NO KEY UPDATE", logger: logger) }
            guard let row = try await Self.first(connection.query(Self.balanceQuery(.key(keyID), now: now), logger: logger), BalanceRow.self) else {
                throw LedgerError.unknownKey(keyID)
            }
            let balance = Self.balance(row)
            guard balance.spendable.microCredits >= micro else { return .insufficient(available: balance.spendable) }
            let keyPeriod = try await Self.first(
                connection.query(Self.holding(micro, table: "balance", where: "key_id", keyID, now: now), logger: logger), Int64?.self)
            var teamPeriod: Int64?? = nil
            if let teamID {
                teamPeriod = try await Self.first(
                    connection.query(Self.holding(micro, table: "team", where: "id", teamID, now: now), logger: logger), Int64?.self)
            }
            try await connection.query(
                """
                INSERT INTO hold (id, key_id, team_id, amount, state, expires_at, created_at, key_period, team_period)
                VALUES (\(hold.rawValue), \(keyID), \(teamID), \(micro), 'open', \(expiresAt), \(now), \(keyPeriod ?? nil), \(teamPeriod ?? nil))
                """, logger: logger)
            return .held(hold, available: Credits(microCredits: balance.spendable.microCredits - micro))
        }
    }

    /// Holds `micro` on one row of running totals, counting it in a calendar budget's period (a
    /// rolling one counts the hold itself); returns the period it counts in, NULL if none.
    private static func holding(_ micro: Int64, table: String, where column: String, _ id: String, now: Timestamp) -> PostgresQuery {
        let calendar = "\(table).budget_amount IS NOT NULL AND NOT \(table).budget_rolling"
        return """
            UPDATE \(unescaped: table) SET held = held + \(micro),
                period_start = CASE WHEN \(unescaped: calendar) THEN \(unescaped: PostgresBudgetSQL.period(table, now: "\(now)")) ELSE period_start END,
                period_spent = CASE WHEN \(unescaped: calendar) THEN \(unescaped: PostgresBudgetSQL.spent(table, now: "\(now)")) + \(micro)
                               ELSE period_spent END
            WHERE \(unescaped: column) = \(id)
            RETURNING CASE WHEN \(unescaped: calendar) THEN period_start END
            """
    }
}
