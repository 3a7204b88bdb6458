import GRDB
import GenerationCore

/// Periodic budgets (`PeriodBudget`): kept on the account's row of running totals, with the count
/// of the period it last counted in; each hold names the periods it counts in.
extension SQLiteLedger {
    static let periodicBudgetsSchema = """
        -- A key's and a team's budget per period, and what the period it last counted (period_start)
        -- has held and charged: checked and counted by every reserve, with the balance.
        ALTER TABLE balance ADD COLUMN budget_period TEXT CHECK (budget_period IN ('day', 'week', 'month'));
        ALTER TABLE balance ADD COLUMN budget_amount INTEGER CHECK (budget_amount > 0);
        ALTER TABLE balance ADD COLUMN budget_time_zone TEXT;
        ALTER TABLE balance ADD COLUMN period_start INTEGER;
        ALTER TABLE balance ADD COLUMN period_spent INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE team ADD COLUMN budget_period TEXT CHECK (budget_period IN ('day', 'week', 'month'));
        ALTER TABLE team ADD COLUMN budget_amount INTEGER CHECK (budget_amount > 0);
        ALTER TABLE team ADD COLUMN budget_time_zone TEXT;
        ALTER TABLE team ADD COLUMN period_start INTEGER;
        ALTER TABLE team ADD COLUMN period_spent INTEGER NOT NULL DEFAULT 0;
        -- A rolling window (the last 24 hours, 7 or 30 days) instead of calendar periods: summed
        -- from the holds reserved within it, which these indexes find.
        ALTER TABLE balance ADD COLUMN budget_rolling INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE team ADD COLUMN budget_rolling INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX hold_by_key_and_time ON hold (key_id, created_at);
        CREATE INDEX hold_by_team_and_time ON hold (team_id, created_at);
        -- The period of the key's budget, and of the team's, that a hold counts in (NULL: none).
        ALTER TABLE hold ADD COLUMN key_period INTEGER;
        ALTER TABLE hold ADD COLUMN team_period INTEGER;
        """

    /// Holds are summed by team for team members only: a hold without a team needs no place in
    /// the team's index, which saves every such request a page of the write-ahead log.
    static let teamHoldsIndexSchema = """
        DROP INDEX hold_by_team_and_time;
        CREATE INDEX hold_by_team_and_time ON hold (team_id, created_at) WHERE team_id IS NOT NULL;
        """

    /// The budget columns of a row of running totals, under `prefix`.
    static func budgetColumns(_ table: String, as prefix: String = "") -> String {
        ["budget_period", "budget_amount", "budget_time_zone", "budget_rolling", "period_start", "period_spent"]
            .map { "\(table).\($0) AS \(prefix)\($0)" }.joined(separator: ", ")
    }

    /// The budget and its count from a row read with `budgetColumns`.
    static func count(_ row: some NamedColumns, prefix: String = "") -> PeriodCount {
        var budget: PeriodBudget?
        if let period = (row[prefix + "budget_period"] as String?).flatMap(PeriodBudget.Period.init(rawValue:)),
            let amount: Int64 = row[prefix + "budget_amount"], let timeZone: String = row[prefix + "budget_time_zone"]
        {
            budget = PeriodBudget(
                stored: period, amount: Credits(microCredits: amount), timeZone: timeZone, rolling: row[prefix + "budget_rolling"] ?? false)
        }
        return PeriodCount(budget: budget, countedPeriod: row[prefix + "period_start"], spent: row[prefix + "period_spent"] ?? 0)
    }

    /// The count of `account` read with `budgetColumns`, with what its rolling window holds at
    /// `now` summed in (in the caller's transaction: the sum and the reserve are one step).
    static func count(_ row: some NamedColumns, prefix: String = "", of account: Account, _ db: Database, at now: Timestamp) throws -> PeriodCount {
        var count = count(row, prefix: prefix)
        guard let budget = count.budget, budget.rolling else { return count }
        let owner = account.holdPeriodColumns.owner
        count.rollingSpent =
            try Int64.fetchOne(
                db.cachedStatement(
                    sql: "SELECT COALESCE(SUM(\(BalanceAudit.periodSpending)), 0) FROM hold h WHERE h.\(owner) = ? AND h.created_at > ?"),
                arguments: [account.id, now - budget.window]) ?? 0
        return count
    }

    private static let keyBalanceSQL = """
        SELECT b.balance, b.held, k.team_id, t.balance - t.held AS team_available, \(budgetColumns("b")), \(budgetColumns("t", as: "team_"))
        FROM balance b JOIN api_key k ON k.id = b.key_id LEFT JOIN team t ON t.id = k.team_id WHERE b.key_id = ?
        """
    private static let teamBalanceSQL =
        "SELECT balance, held, NULL AS team_id, NULL AS team_available, \(budgetColumns("team")) FROM team WHERE id = ?"

    /// An account's balance at `now`; a key's with what its team has available.
    static func balance(_ db: Database, _ account: Account, at now: Timestamp) throws -> Balance? {
        let sql =
            switch account {
            case .key: keyBalanceSQL
            case .team: teamBalanceSQL
            }
        guard let row = try StatementRow.fetchOne(db.cachedStatement(sql: sql), arguments: [account.id]) else { return nil }
        let teamAvailable: Int64? = row["team_available"], teamID: String? = row["team_id"]
        return Balance(
            balance: Credits(microCredits: row["balance"]), held: Credits(microCredits: row["held"]),
            teamAvailable: teamAvailable.map(Credits.init(microCredits:)), period: try count(row, of: account, db, at: now).spending(at: now),
            teamPeriod: try teamID.map { try count(row, prefix: "team_", of: .team($0), db, at: now).spending(at: now) } ?? nil)
    }

    public func setBudget(_ budget: PeriodBudget?, of account: Account) async throws(LedgerError) -> Balance {
        let totals = account.totalsTable
        return try await write { db in
            let now = self.now()
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT \(Self.budgetColumns(totals.name)) FROM \(totals.name) WHERE \(totals.id) = ?", arguments: [account.id])
            else { throw account.unknown }
            let count = Self.count(row).with(budget: budget)
            try db.execute(
                sql: """
                    UPDATE \(totals.name) SET budget_period = ?, budget_amount = ?, budget_time_zone = ?, budget_rolling = ?, period_start = ?,
                        period_spent = ?
                    WHERE \(totals.id) = ?
                    """,
                arguments: [
                    budget?.period.rawValue, budget?.amount.microCredits, budget?.timeZone, budget?.rolling ?? false, count.countedPeriod,
                    count.spent, account.id,
                ])
            if count.countedPeriod == nil {
                // Counting anew: no hold of the last weeks counts in any period of this budget.
                let (column, owner) = account.holdPeriodColumns
                try db.execute(
                    sql: "UPDATE hold SET \(column) = NULL WHERE \(owner) = ? AND created_at >= ? AND \(column) IS NOT NULL",
                    arguments: [account.id, now - BudgetReset.window])
            }
            guard let balance = try Self.balance(db, account, at: now) else { throw account.unknown }
            return balance
        }
    }
}

extension Account {
    /// The hold's column naming the period it counts in for this account, and the column naming the account.
    var holdPeriodColumns: (period: String, owner: String) {
        switch self {
        case .key: ("key_period", "key_id")
        case .team: ("team_period", "team_id")
        }
    }
}
