public import Foundation
public import GenerationCore

/// A budget that renews: at most `amount` reserved and charged per calendar day, week (Monday to
/// Sunday) or month in `timeZone`, on top of the account's one-off balance. Every reserve checks and
/// counts it in the same atomic step as the balance, so no burst, not even one across the turn of a
/// period, spends more than `amount` in either period.
///
/// A hold counts in the period it was reserved in, whenever it settles: a charge posted after the
/// turn stays in the old period, a void or an expiry gives its amount back to that period only
/// (nothing to the new one), and a charge made after its hold expired counts again in the hold's
/// period, even past the budget, since work done is never free.
public struct PeriodBudget: Sendable, Equatable {
    public enum Period: String, Sendable, CaseIterable {
        case day, week, month

        /// The calendar's unit of the period.
        public var component: Calendar.Component {
            switch self {
            case .day: .day
            case .week: .weekOfYear
            case .month: .month
            }
        }
    }

    public let period: Period
    public let amount: Credits
    /// An IANA time zone name, such as `Europe/Paris`; the periods begin at its midnights.
    public let timeZone: String
    /// A rolling window instead of calendar periods: at most `amount` in the last 24 hours, 7 days
    /// or 30 days before each reserve, whatever the time zone.
    public let rolling: Bool

    /// The checked budget, or why it is refused: an amount from one micro-credit to
    /// `Credits.maximum`, a time zone that the IANA database names.
    public static func checked(
        period: Period, amount: Credits, timeZone: String = "UTC", rolling: Bool = false
    ) -> Result<PeriodBudget, BudgetProblem> {
        guard amount > .zero, amount <= Credits.maximum else {
            return .failure(BudgetProblem(message: "the amount must be above zero and at most \(Credits.maximum)"))
        }
        guard isKnown(timeZone: timeZone) else {
            return .failure(BudgetProblem(message: "unknown time zone '\(timeZone)': expected an IANA name such as Europe/Paris or UTC"))
        }
        return .success(PeriodBudget(period: period, amount: amount, timeZone: rolling ? "UTC" : timeZone, rolling: rolling))
    }

    /// A budget read back from a store, which checked it when it was set.
    init(stored period: Period, amount: Credits, timeZone: String, rolling: Bool = false) {
        self.init(period: period, amount: amount, timeZone: timeZone, rolling: rolling)
    }

    private init(period: Period, amount: Credits, timeZone: String, rolling: Bool) {
        self.period = period
        self.amount = amount
        self.timeZone = timeZone
        self.rolling = rolling
    }

    /// A rolling window's length: 24 hours, 7 days or 30 days.
    public var window: Timestamp {
        switch period {
        case .day: 86_400_000
        case .week: 7 * 86_400_000
        case .month: 30 * 86_400_000
        }
    }

    /// Names of the IANA database only, as Foundation reads them back unchanged: offsets such as
    /// "GMT+1", which Foundation and PostgreSQL read with opposite signs, are refused.
    public static func isKnown(timeZone name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ $0 < 0x80 }), !name.contains(".."), !name.hasPrefix("/")
        else { return false }
        return name == "UTC" || TimeZone(identifier: name)?.identifier == name
    }

    /// When the period that holds `now` began, in milliseconds since 1970 (for a rolling window,
    /// its length before `now`).
    public func periodStart(at now: Timestamp) -> Timestamp {
        rolling ? now - window : Self.start(of: period, in: Self.calendar(timeZone: timeZone), at: now)
    }

    /// The calendar whose days, weeks (from Monday) and months the periods are: ISO 8601's, in
    /// `timeZone` (UTC for a name it does not know, which `isKnown` refuses before).
    public static func calendar(timeZone: String) -> Calendar {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        return calendar
    }

    /// When the `period` of `calendar` that holds `now` began.
    public static func start(of period: Period, in calendar: Calendar, at now: Timestamp) -> Timestamp {
        interval(of: period, in: calendar, at: now)?.lowerBound ?? now
    }

    /// When the `period` of `calendar` that holds `now` ends, and the next one begins; nil where
    /// the calendar cannot tell.
    public static func end(of period: Period, in calendar: Calendar, at now: Timestamp) -> Timestamp? {
        interval(of: period, in: calendar, at: now)?.upperBound
    }

    private static func interval(of period: Period, in calendar: Calendar, at now: Timestamp) -> Range<Timestamp>? {
        let date = Date(timeIntervalSince1970: Double(now) / 1000)
        guard let interval = calendar.dateInterval(of: period.component, for: date) else { return nil }
        let start = Timestamp((interval.start.timeIntervalSince1970 * 1000).rounded())
        return start..<max(start, Timestamp((interval.end.timeIntervalSince1970 * 1000).rounded()))
    }
}

/// Why an admin's budget is refused, in words for a 400 or the command line.
public struct BudgetProblem: Error, Sendable, Equatable {
    public let message: String
}

/// A periodic budget in its current period: what has been held and charged in it, and what is left.
public struct PeriodSpending: Sendable, Equatable {
    public let budget: PeriodBudget
    /// When the current period began.
    public let periodStart: Timestamp
    /// Held and charged in the current period (above the budget only by charges made after their
    /// holds expired).
    public let spent: Credits

    public init(budget: PeriodBudget, periodStart: Timestamp, spent: Credits) {
        self.budget = budget
        self.periodStart = periodStart
        self.spent = spent
    }

    /// What can still be reserved in this period.
    public var left: Credits { spent >= budget.amount ? .zero : budget.amount - spent }
}

/// An account's budget as the stores keep it: the budget, and the running count of the period it
/// last counted in. The count belongs to `countedPeriod`; once the clock is in a later period the
/// period's spending is zero until a reserve starts counting it. The count never goes back to an
/// earlier period: a reserve whose clock is still before the turn (another replica's clock a little
/// behind, or a batch timed just before another) counts in the later period, so the count is never
/// started over and no period is overspent.
///
/// A rolling window keeps no count: the store sums the holds reserved within it (held if open,
/// charged if posted) into `rollingSpent` before asking, under the same lock as the reserve.
struct PeriodCount: Sendable, Equatable {
    var budget: PeriodBudget?
    var countedPeriod: Timestamp?
    var spent: Int64 = 0
    var rollingSpent: Int64 = 0

    /// The current period's start and spending at `now`; nil without a budget.
    func current(at now: Timestamp) -> (start: Timestamp, spent: Int64)? {
        guard let budget else { return nil }
        if budget.rolling { return (now - budget.window, rollingSpent) }
        let start = budget.periodStart(at: now)
        if let countedPeriod, countedPeriod >= start { return (countedPeriod, spent) }
        return (start, 0)
    }

    func spending(at now: Timestamp) -> PeriodSpending? {
        guard let budget, let current = current(at: now) else { return nil }
        return PeriodSpending(budget: budget, periodStart: current.start, spent: Credits(microCredits: current.spent))
    }

    /// The count with `amount` reserved at `now`, or nil if the budget refuses it; also the period
    /// the hold counts in (nil without a budget).
    func reserving(_ amount: Int64, at now: Timestamp) -> (count: PeriodCount, period: Timestamp?)? {
        guard let budget, let current = current(at: now) else { return (self, nil) }
        // `spent` may pass the budget by late charges only: the subtraction is from two numbers
        // within ±`Credits.maximum`, the comparison never overflows.
        guard current.spent <= budget.amount.microCredits - amount else { return nil }
        // A rolling window counts the hold itself: nothing to count, no period to name.
        if budget.rolling { return (self, nil) }
        return (PeriodCount(budget: budget, countedPeriod: current.start, spent: current.spent + amount), current.start)
    }

    /// The count once a hold of `period` settles: `delta` (charge minus released amount) counts
    /// only if the hold's period is the one counted.
    func settling(holdPeriod period: Timestamp?, delta: Int64) -> PeriodCount {
        guard let period, period == countedPeriod else { return self }
        var settled = self
        settled.spent += delta
        return settled
    }

    /// The count with a new budget: an amount changed in the same period and time zone keeps the
    /// period's count; a new period, a new time zone or a new budget counts from now on.
    func with(budget new: PeriodBudget?) -> PeriodCount {
        guard let new, let budget, new.period == budget.period, new.timeZone == budget.timeZone, new.rolling == budget.rolling else {
            return PeriodCount(budget: new, countedPeriod: nil, spent: 0)
        }
        return PeriodCount(budget: new, countedPeriod: countedPeriod, spent: spent)
    }
}
