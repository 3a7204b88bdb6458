import GenerationCore
import PostgresNIO

/// Periodic budgets (`PeriodBudget`) on PostgreSQL: kept on the account's row of running totals,
/// where every reserve locks, checks and counts them with the balance, in the same statement.
/// PostgreSQL computes the period's start itself (`date_trunc` in the budget's time zone), so
/// that every replica agrees on it whatever its own time zone.
extension PostgresLedger {
    static let periodicBudgetsSchema: [PostgresQuery] = [
        """
        ALTER TABLE balance ADD COLUMN budget_period TEXT CHECK (budget_period IN ('day', 'week', 'month')),
            ADD COLUMN budget_amount BIGINT CHECK (budget_amount > 0), ADD COLUMN budget_time_zone TEXT,
            ADD COLUMN period_start BIGINT, ADD COLUMN period_spent BIGINT NOT NULL DEFAULT 0
        """,
        """
        ALTER TABLE team ADD COLUMN budget_period TEXT CHECK (budget_period IN ('day', 'week', 'month')),
            ADD COLUMN budget_amount BIGINT CHECK (budget_amount > 0), ADD COLUMN budget_time_zone TEXT,
            ADD COLUMN period_start BIGINT, ADD COLUMN period_spent BIGINT NOT NULL DEFAULT 0
        """,
        "ALTER TABLE hold ADD COLUMN key_period BIGINT, ADD COLUMN team_period BIGINT",
        // A rolling window instead of calendar periods, summed from the holds reserved within it.
        "ALTER TABLE balance ADD COLUMN budget_rolling BOOLEAN NOT NULL DEFAULT false",
        "ALTER TABLE team ADD COLUMN budget_rolling BOOLEAN NOT NULL DEFAULT false",
        "CREATE INDEX hold_by_key_and_time ON hold (key_id, created_at)",
        "CREATE INDEX hold_by_team_and_time ON hold (team_id, created_at)",
    ]

    /// Holds are summed by team for team members only: a hold without a team needs no place in
    /// the team's index.
    static let teamHoldsIndexSchema: [PostgresQuery] = [
        "DROP INDEX hold_by_team_and_time",
        "CREATE INDEX hold_by_team_and_time ON hold (team_id, created_at) WHERE team_id IS NOT NULL",
    ]

    public func setBudget(_ budget: PeriodBudget?, of account: Account) async throws(LedgerError) -> Balance {
        let totals = account.totalsTable, (column, owner) = account.holdPeriodColumns, id = account.id, now = now()
        let period = budget?.period.rawValue, amount = budget?.amount.microCredits, timeZone = budget?.timeZone
        let rolling = budget?.rolling ?? false
        return try await transaction { connection, logger in
            if let timeZone {
                // Foundation's and PostgreSQL's time zone databases may differ: this one decides here.
                let known = try await Self.first(
                    connection.query("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = \(timeZone))", logger: logger), Bool.self)
                guard known == true else { throw LedgerError.unknownTimeZone(timeZone) }
            }
            // The same period and time zone keep the period's count (an amount changed); any other
            // budget counts anew, and the holds of the last weeks count in none of its periods.
            guard
                let reset = try await Self.first(
                    connection.query(
                        """
                        UPDATE \(unescaped: totals.name) SET
                            period_start = CASE WHEN budget_period = \(period) AND budget_time_zone = \(timeZone) AND budget_rolling = \(rolling)
                                THEN period_start END,
                            period_spent = CASE WHEN budget_period = \(period) AND budget_time_zone = \(timeZone) AND budget_rolling = \(rolling)
                                THEN period_spent ELSE 0 END,
                            budget_period = \(period), budget_amount = \(amount), budget_time_zone = \(timeZone), budget_rolling = \(rolling)
                        WHERE \(unescaped: totals.id) = \(id) RETURNING period_start IS NULL
                        """, logger: logger), Bool.self)
            else { throw account.unknown }
            if reset {
                try await connection.query(
                    """
                    UPDATE hold SET \(unescaped: column) = NULL
                    WHERE \(unescaped: owner) = \(id) AND created_at >= \(now - BudgetReset.window) AND \(unescaped: column) IS NOT NULL
                    """, logger: logger)
            }
            guard let row = try await Self.first(connection.query(Self.balanceQuery(account, now: now), logger: logger), BalanceRow.self) else {
                throw account.unknown
            }
            return Self.balance(row)
        }
    }
}

/// A key's or team's balance as the statements return it: balance, held, the team's available
/// credits, then the key's (or team's) and the team's budgets in their current periods
/// (`PostgresBudgetSQL.columns`).
typealias BalanceRow = (
    Int64, Int64, Int64?, String?, Int64?, String?, Int64?, Int64?, String?, Int64?, String?, Int64?, Int64?
)

extension PostgresLedger {
    static func balance(_ row: BalanceRow) -> Balance {
        Balance(
            balance: Credits(microCredits: row.0), held: Credits(microCredits: row.1), teamAvailable: row.2.map(Credits.init(microCredits:)),
            period: spending(row.3, row.4, row.5, row.6, row.7), teamPeriod: spending(row.8, row.9, row.10, row.11, row.12))
    }

    /// `period` is the budget's period, prefixed `rolling ` for a rolling window (`columns`).
    private static func spending(_ period: String?, _ amount: Int64?, _ timeZone: String?, _ start: Int64?, _ spent: Int64?) -> PeriodSpending? {
        let rolling = period?.hasPrefix("rolling ") ?? false
        guard let period = period.flatMap({ PeriodBudget.Period(rawValue: rolling ? String($0.dropFirst(8)) : $0) }), let amount, let timeZone,
            let start
        else { return nil }
        return PeriodSpending(
            budget: PeriodBudget(stored: period, amount: Credits(microCredits: amount), timeZone: timeZone, rolling: rolling),
            periodStart: start, spent: Credits(microCredits: spent ?? 0))
    }
}

/// SQL for the statements that check and count periodic budgets.
enum PostgresBudgetSQL {
    /// When the current period of the budget on row `table` began (milliseconds since 1970), at
    /// `now` (a SQL expression in milliseconds); NULL without a budget.
    static func start(_ table: String, now: String) -> String {
        "(extract(epoch FROM date_trunc(\(table).budget_period, to_timestamp(\(now)::BIGINT / 1000.0), \(table).budget_time_zone)) * 1000)::BIGINT"
    }

    /// The period a reserve at `now` counts in: the current one, or the one counted already if it
    /// is later (`PeriodCount`: the count never goes back).
    static func period(_ table: String, now: String) -> String {
        "GREATEST(\(start(table, now: now)), \(table).period_start)"
    }

    /// What the budget on row `table` has spent in that period: its count if it is the period
    /// counted, else nothing yet.
    static func spent(_ table: String, now: String) -> String {
        "(CASE WHEN \(table).period_start >= \(start(table, now: now)) THEN \(table).period_spent ELSE 0 END)"
    }

    /// A rolling window's length in milliseconds, for the budget on row `table`.
    static func window(_ table: String) -> String {
        "(CASE \(table).budget_period WHEN 'day' THEN 86400000 WHEN 'week' THEN 604800000 ELSE 2592000000 END)::BIGINT"
    }

    /// What the holds of the account on row `table` (a key's `balance` row, or a `team` row)
    /// reserved within its rolling window hold or were charged.
    static func rollingSpent(_ table: String, team: Bool, now: String) -> String {
        let owner = team ? "h.team_id = \(table).id" : "h.key_id = \(table).key_id"
        return """
            (SELECT COALESCE(SUM(\(BalanceAudit.periodSpending)), 0)::BIGINT FROM hold h
             WHERE \(owner) AND h.created_at > \(now)::BIGINT - \(window(table)))
            """
    }

    /// The budget (its period prefixed `rolling ` for a rolling window), its current period's
    /// start and spending: the five budget columns of `BalanceRow`, named with `prefix` where given.
    static func columns(_ table: String, team: Bool, now: String, as prefix: String? = nil) -> String {
        let values = [
            "CASE WHEN \(table).budget_rolling THEN 'rolling ' || \(table).budget_period ELSE \(table).budget_period END",
            "\(table).budget_amount", "\(table).budget_time_zone",
            "CASE WHEN \(table).budget_rolling THEN \(now)::BIGINT - \(window(table)) ELSE \(period(table, now: now)) END",
            "CASE WHEN \(table).budget_rolling THEN \(rollingSpent(table, team: team, now: now)) ELSE \(spent(table, now: now)) END",
        ]
        guard let prefix else { return values.joined(separator: ", ") }
        return zip(values, ["period", "amount", "time_zone", "start", "spent"]).map { "\($0) AS \(prefix)\($1)" }.joined(separator: ", ")
    }

    /// The five budget columns that `columns(_:now:as:)` named with `prefix`, read from `table`.
    static func named(_ table: String, _ prefix: String) -> String {
        ["period", "amount", "time_zone", "start", "spent"].map { "\(table).\(prefix)\($0)" }.joined(separator: ", ")
    }

    /// Five NULLs in place of `columns`, for an account without a team.
    static let none = "NULL::TEXT, NULL::BIGINT, NULL::TEXT, NULL::BIGINT, NULL::BIGINT"
}
