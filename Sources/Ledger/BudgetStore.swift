/// Periodic budgets of keys and teams (`PeriodBudget`). The budget is read with the account's
/// `Balance` (`period`), and enforced by `CreditStore.reserve`.
public protocol BudgetStore: Sendable {
    /// Sets, changes or (with nil) removes an account's periodic budget; returns its balance.
    /// Changing only the amount keeps what the current period has spent; a new budget, or one in
    /// another period or time zone, counts what is reserved from now on.
    func setBudget(_ budget: PeriodBudget?, of account: Account) async throws(LedgerError) -> Balance
}

/// How far back a hold's period can lie and still be the current period of a budget set now: a
/// month and a day of time zone offsets. A budget that starts counting anew forgets the periods
/// of the holds within it, so that none of them is counted twice.
enum BudgetReset {
    static let window: Timestamp = 33 * 86_400_000
}
