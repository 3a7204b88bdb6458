/// Periodic budgets in memory, with the SQL stores' rules (`PeriodCount`).
extension InMemoryLedger {
    public func setBudget(_ budget: PeriodBudget?, of account: Account) async throws(LedgerError) -> Balance {
        let now = now()
        return try locked { (state: inout InMemoryState) throws(LedgerError) -> Balance in
            guard let totals = state.totals[account] else { throw account.unknown }
            let count = totals.budget.with(budget: budget)
            if count.countedPeriod == nil { state.forgetPeriods(of: account, since: now - BudgetReset.window) }
            state.totals[account]?.budget = count
            guard let balance = state.balance(of: account, at: now) else { throw account.unknown }
            return balance
        }
    }
}

extension InMemoryState {
    /// A budget counts anew: the holds of the account reserved since `since` no longer count in
    /// any of its periods.
    mutating func forgetPeriods(of account: Account, since: Timestamp) {
        for (id, hold) in holds where hold.createdAt >= since {
            switch account {
            case .key(let key) where hold.keyID == key: holds[id]?.keyPeriod = nil
            case .team(let team) where hold.teamID == team: holds[id]?.teamPeriod = nil
            default: break
            }
        }
    }
}
