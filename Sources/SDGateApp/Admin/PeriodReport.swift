package import Ledger

/// A periodic budget in its current period, as the command line and the admin API show it.
package struct PeriodReport: Encodable, Sendable, Equatable {
    /// `day`, `week` or `month`.
    let per: String
    /// A rolling window (the last 24 hours, 7 or 30 days) rather than calendar periods.
    let rolling: Bool
    let amount: String
    let time_zone: String
    /// When the current period began.
    let period_start: String
    /// Held and charged in the current period.
    let spent: String
    let left: String

    package init(_ spending: PeriodSpending) {
        per = spending.budget.period.rawValue
        rolling = spending.budget.rolling
        amount = spending.budget.amount.description
        time_zone = spending.budget.timeZone
        period_start = KeyReport.date(spending.periodStart)
        spent = spending.spent.description
        left = spending.left.description
    }

    package var text: String {
        rolling
            ? "rolling \(per) budget \(amount): spent \(spent), left \(left)" : "\(per) budget \(amount) (\(time_zone)): spent \(spent), left \(left)"
    }
}
