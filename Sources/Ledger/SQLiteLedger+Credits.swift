import Foundation
import GRDB
public import GenerationCore

/// A key's or a team's credits: top-ups and deductions, balances, and the audit of both.
extension SQLiteLedger {
    public func adjust(_ account: Account, by amount: Credits, reason: String) async throws(LedgerError) -> Balance {
        try AdjustmentRule.check(amount)
        let totals = account.totalsTable, entries = account.entriesTable
        return try await write { db in
            // A deduction may not take the available balance below zero, nor a top-up the balance past
            // the maximum; the WHERE makes both atomic. A top-up smaller than a debt (a late charge's)
            // pays part of it.
            try db.execute(
                sql: """
                    UPDATE \(totals.name) SET balance = balance + ?
                    WHERE \(totals.id) = ? AND (? > 0 OR balance + ? - held >= 0) AND balance + ? <= ?
                    """,
                arguments: [
                    amount.microCredits, account.id, amount.microCredits, amount.microCredits, amount.microCredits, Credits.maximum.microCredits,
                ])
            guard db.changesCount == 1 else {
                throw try Self.balance(db, account, at: 0) == nil ? account.unknown : AdjustmentRule.refusal(of: amount)
            }
            try db.execute(
                sql: "INSERT INTO \(entries.name) (\(entries.owner), kind, amount, reason, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [account.id, AdjustmentRule.entryKind(of: amount), amount.microCredits, reason, self.now()])
            guard let balance = try Self.balance(db, account, at: self.now()) else { throw account.unknown }
            return balance
        }
    }

    public func balance(of account: Account) async throws(LedgerError) -> Balance {
        let now = now()
        guard let balance = try await read(oneStatement: true, { db in try Self.balance(db, account, at: now) }) else { throw account.unknown }
        return balance
    }

    public func verify() async throws(LedgerError) -> [String] {
        try await read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT b.key_id, b.balance, b.held,
                           COALESCE((SELECT SUM(amount) FROM entry e WHERE e.key_id = b.key_id), 0) AS from_entries,
                           COALESCE((SELECT SUM(amount) FROM hold h WHERE h.key_id = b.key_id AND h.state = 'open'), 0) AS from_holds,
                           \(BalanceAudit.postPairing(account: "b.key_id", entries: "entry", owner: "key_id", holdOwner: "key_id")),
                           b.period_start, b.period_spent,
                           COALESCE((SELECT SUM(\(BalanceAudit.periodSpending)) FROM hold h WHERE h.key_id = b.key_id AND h.key_period = b.period_start), 0)
                               AS from_period_holds
                    FROM balance b
                    UNION ALL
                    SELECT t.id, t.balance, t.held,
                           COALESCE((SELECT SUM(amount) FROM team_entry e WHERE e.team_id = t.id), 0),
                           COALESCE((SELECT SUM(amount) FROM hold h WHERE h.team_id = t.id AND h.state = 'open'), 0),
                           \(BalanceAudit.postPairing(account: "t.id", entries: "team_entry", owner: "team_id", holdOwner: "team_id")),
                           t.period_start, t.period_spent,
                           COALESCE((SELECT SUM(\(BalanceAudit.periodSpending)) FROM hold h WHERE h.team_id = t.id AND h.team_period = t.period_start), 0)
                    FROM team t
                    ORDER BY 1
                    """)
            return rows.flatMap { (row: Row) -> [String] in
                let account: String = row["key_id"]
                let balance: Int64 = row["balance"], fromEntries: Int64 = row["from_entries"]
                let held: Int64 = row["held"], fromHolds: Int64 = row["from_holds"]
                return BalanceAudit(
                    account: account, balance: balance, fromEntries: fromEntries, held: held, fromHolds: fromHolds,
                    postEntries: row["post_entries"], matchedEntries: row["matched_entries"], matchedHolds: row["matched_holds"],
                    chargedHolds: row["charged_holds"], lateCharges: row["late_charges"],
                    periodSpent: (row["period_start"] as Int64?).map { _ in row["period_spent"] }, fromPeriodHolds: row["from_period_holds"]
                ).problems
            }
        }
    }
}
