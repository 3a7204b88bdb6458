import Foundation
import GenerationCore
import Ledger

/// Usage per calendar period (`/admin/usage?by=day|week|month&time_zone=...`): the requests and
/// their cost in each day, week (from Monday) or month that had any, as periodic budgets count
/// them, so that an operator can set a budget from what was spent.
struct UsagePeriods: Encodable, Sendable {
    struct Period: Encodable {
        let start: String
        let requests: Int
        let cost: String
    }

    let per: String
    let time_zone: String
    let periods: [Period]

    /// The grouping a query asks for, checked; nil when it asks for none.
    static func grouping(_ query: [String: String]) throws(UsageWindowError) -> (PeriodBudget.Period, String)? {
        guard let by = query["by"] else { return nil }
        guard let period = PeriodBudget.Period(rawValue: by) else { throw UsageWindowError(message: "by: expected day, week or month") }
        let timeZone = query["time_zone"] ?? "UTC"
        guard PeriodBudget.isKnown(timeZone: timeZone) else {
            throw UsageWindowError(message: "time_zone: unknown time zone '\(timeZone)': expected an IANA name such as Europe/Paris or UTC")
        }
        return (period, timeZone)
    }

    init(_ events: [UsageEvent], per period: PeriodBudget.Period, timeZone: String) {
        let calendar = PeriodBudget.calendar(timeZone: timeZone)
        per = period.rawValue
        time_zone = timeZone
        periods = Dictionary(grouping: events) { PeriodBudget.start(of: period, in: calendar, at: $0.at) }.sorted { $0.key < $1.key }
            .map { start, events in
                Period(start: KeyReport.date(start), requests: events.count, cost: events.reduce(Credits.zero) { $0 + $1.cost }.description)
            }
    }
}
