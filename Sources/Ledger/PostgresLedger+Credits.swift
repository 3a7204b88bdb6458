import Foundation
public import GenerationCore
import PostgresNIO

/// A key's or a team's credits: top-ups and deductions, balances, and the audit of both.
extension PostgresLedger {
    public func adjust(_ account: Account, by amount: Credits, reason: String) async throws(LedgerError) -> Balance {
        try AdjustmentRule.check(amount)
        let micro = amount.microCredits, now = now(), kind = AdjustmentRule.entryKind(of: amount), maximum = Credits.maximum.microCredits
        let totals = account.totalsTable, entries = account.entriesTable, id = account.id
        return try await transaction { connection, logger in
            // A deduction may not take the available balance below zero, nor a top-up the balance past
            // the maximum; the WHERE makes both atomic, and locks the row until the entry is written.
            // A top-up smaller than a debt (a late charge's) pays part of it.
            guard
                try await Self.first(
                    connection.query(
                        """
                        UPDATE \(unescaped: totals.name) SET balance = balance + \(micro)
                        WHERE \(unescaped: totals.id) = \(id) AND (\(micro) > 0 OR balance + \(micro) - held >= 0) AND balance + \(micro) <= \(maximum)
                        RETURNING \(unescaped: totals.id)
                        """, logger: logger), String.self) != nil
            else {
                let known = try await Self.first(connection.query(Self.balanceQuery(account, now: now), logger: logger), BalanceRow.self)
                throw known == nil ? account.unknown : AdjustmentRule.refusal(of: amount)
            }
            try await connection.query(
                """
                INSERT INTO \(unescaped: entries.name) (\(unescaped: entries.owner), kind, amount, reason, created_at)
                VALUES (\(id), \(kind), \(micro), \(reason), \(now))
                """, logger: logger)
            guard let row = try await Self.first(connection.query(Self.balanceQuery(account, now: now), logger: logger), BalanceRow.self) else {
                throw account.unknown
            }
            return Self.balance(row)
        }
    }

    public func balance(of account: Account) async throws(LedgerError) -> Balance {
        let now = now()
        guard
            let row = try await perform({ client, logger in
                try await Self.first(client.query(Self.balanceQuery(account, now: now), logger: logger), BalanceRow.self)
            })
        else { throw account.unknown }
        return Self.balance(row)
    }

    /// An account's balance, held credits, (for a key in a team) what its team has available, and
    /// the budgets in their current periods at `now`: a `BalanceRow`.
    static func balanceQuery(_ account: Account, now: Timestamp) -> PostgresQuery {
        switch account {
        case .key(let id):
            """
            SELECT b.balance, b.held, t.balance - t.held,
                   \(unescaped: PostgresBudgetSQL.columns("b", team: false, now: "\(now)")),
                   \(unescaped: PostgresBudgetSQL.columns("t", team: true, now: "\(now)"))
            FROM balance b JOIN api_key k ON k.id = b.key_id LEFT JOIN team t ON t.id = k.team_id WHERE b.key_id = \(id)
            """
        case .team(let id):
            """
            SELECT team.balance, team.held, NULL::BIGINT, \(unescaped: PostgresBudgetSQL.columns("team", team: true, now: "\(now)")),
                   \(unescaped: PostgresBudgetSQL.none)
            FROM team WHERE id = \(id)
            """
        }
    }

    public func verify() async throws(LedgerError) -> [String] {
        let rows = try await perform { client, logger in
            var rows: [AuditRow] = []
            let spending = BalanceAudit.periodSpending
            for try await row in try await client.query(
                """
                SELECT b.key_id, b.balance, b.held,
                       COALESCE((SELECT SUM(amount) FROM entry e WHERE e.key_id = b.key_id), 0)::BIGINT,
                       COALESCE((SELECT SUM(amount) FROM hold h WHERE h.key_id = b.key_id AND h.state = 'open'), 0)::BIGINT,
                       \(unescaped: BalanceAudit.postPairing(account: "b.key_id", entries: "entry", owner: "key_id", holdOwner: "key_id")),
                       b.period_start, b.period_spent,
                       COALESCE((SELECT SUM(\(unescaped: spending)) FROM hold h WHERE h.key_id = b.key_id AND h.key_period = b.period_start), 0)::BIGINT
                FROM balance b
                UNION ALL
                SELECT t.id, t.balance, t.held,
                       COALESCE((SELECT SUM(amount) FROM team_entry e WHERE e.team_id = t.id), 0)::BIGINT,
                       COALESCE((SELECT SUM(amount) FROM hold h WHERE h.team_id = t.id AND h.state = 'open'), 0)::BIGINT,
                       \(unescaped: BalanceAudit.postPairing(account: "t.id", entries: "team_entry", owner: "team_id", holdOwner: "team_id")),
                       t.period_start, t.period_spent,
                       COALESCE((SELECT SUM(\(unescaped: spending)) FROM hold h WHERE h.team_id = t.id AND h.team_period = t.period_start), 0)::BIGINT
                FROM team t
                ORDER BY 1
                """, logger: logger
            ).decode(AuditRow.self) { rows.append(row) }
            return rows
        }
        return rows.flatMap {
            account, balance, held, fromEntries, fromHolds, postEntries, matchedEntries, matchedHolds, chargedHolds, lateCharges, periodStart,
            periodSpent, fromPeriodHolds in
            BalanceAudit(
                account: account, balance: balance, fromEntries: fromEntries, held: held, fromHolds: fromHolds,
                postEntries: postEntries, matchedEntries: matchedEntries, matchedHolds: matchedHolds, chargedHolds: chargedHolds,
                lateCharges: lateCharges,
                periodSpent: periodStart.map { _ in periodSpent }, fromPeriodHolds: fromPeriodHolds
            ).problems
        }
    }

    /// An account's figures for `verify`: the running totals and what the entries and holds say.
    private typealias AuditRow = (String, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64?, Int64, Int64)
}
