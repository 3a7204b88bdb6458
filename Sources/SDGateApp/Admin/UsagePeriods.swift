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

    /// The most periods one answer may hold, as many as a series' steps: each is a row to sum and
    /// a cut to bind, and a client cannot make the gateway build an answer without bound.
    static let maxPeriods = UsageSeries.maxBuckets

    /// The grouping a query asks for over `window`, checked; nil when it asks for none. A window
    /// of more than `maxPeriods` periods is refused from its count, before any period is built.
    static func grouping(_ query: [String: String], over window: UsageWindow) throws(UsageWindowError) -> (PeriodBudget.Period, String)? {
        guard let by = query["by"] else { return nil }
        guard let period = PeriodBudget.Period(rawValue: by) else { throw UsageWindowError(message: "by: expected day, week or month") }
        let timeZone = query["time_zone"] ?? "UTC"
        guard PeriodBudget.isKnown(timeZone: timeZone) else {
            throw UsageWindowError(message: "time_zone: unknown time zone '\(timeZone)': expected an IANA name such as Europe/Paris or UTC")
        }
        let count = Self.count(of: period, in: PeriodBudget.calendar(timeZone: timeZone), from: window.from, to: window.to)
        guard let count, count <= maxPeriods else {
            throw UsageWindowError(
                message:
                    "since, until and by: the window holds more than \(maxPeriods) \(period.rawValue)s: ask for a shorter window or a longer period")
        }
        return (period, timeZone)
    }

    /// How many periods `from..<to` reaches into (as many as `starts` lists), counted by the
    /// calendar without listing them; nil where the calendar cannot tell.
    static func count(of period: PeriodBudget.Period, in calendar: Calendar, from: Timestamp, to: Timestamp) -> Int? {
        func date(_ moment: Timestamp) -> Date { Date(timeIntervalSince1970: Double(moment) / 1000) }
        let first = date(PeriodBudget.start(of: period, in: calendar, at: from)), end = date(to)
        guard let whole = calendar.dateComponents([period.component], from: first, to: end).value(for: period.component), whole >= 0,
            let reached = calendar.date(byAdding: period.component, value: whole, to: first)
        else { return nil }
        // The last whole period ends at `to` or before it; a part of one more follows when before.
        return reached < end ? whole + 1 : whole
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
