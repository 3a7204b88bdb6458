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

    /// The totals of each period of `scope` that had requests, summed by the store.
    static func read(
        from ledger: some UsageStore, scope: UsageScope, per period: PeriodBudget.Period, timeZone: String
    ) async throws(LedgerError) -> UsagePeriods {
        let starts = Self.starts(of: period, in: PeriodBudget.calendar(timeZone: timeZone), from: scope.from, to: scope.to)
        let totals = try await ledger.usageTotals(scope, by: [], cuts: Array(starts.dropFirst()))
        return UsagePeriods(
            per: period.rawValue, time_zone: timeZone,
            periods: totals.sorted { $0.bucket < $1.bucket }.map {
                let sum = UsageSum([$0])
                return Period(start: KeyReport.date(starts[$0.bucket]), requests: sum.requests, cost: sum.cost)
            })
    }

    /// The start of each period that `from..<to` reaches into, the first before `from` or at it.
    static func starts(of period: PeriodBudget.Period, in calendar: Calendar, from: Timestamp, to: Timestamp) -> [Timestamp] {
        var starts = [PeriodBudget.start(of: period, in: calendar, at: from)]
        while let next = PeriodBudget.end(of: period, in: calendar, at: starts[starts.count - 1]), next > starts[starts.count - 1], next < to {
            starts.append(next)
        }
        return starts
    }
}
