package import Ledger

/// A periodic budget in its current period, as the command line and the admin API show it.
package struct PeriodReport: Encodable, Sendable, Equatable {
    /// `day`, `week` or `month`.
    let per: String
    let amount: String
    let time_zone: String
    /// When the current period began.
    let period_start: String
    /// Held and charged in the current period.
    let spent: String
    let left: String

    package init(_ spending: PeriodSpending) {
        per = spending.budget.period.rawValue
        amount = spending.budget.amount.description
        time_zone = spending.budget.timeZone
        period_start = KeyReport.date(spending.periodStart)
        spent = spending.spent.description
        left = spending.left.description
    }

    package var text: String { "\(per) budget \(amount) (\(time_zone)): spent \(spent), left \(left)" }
}
