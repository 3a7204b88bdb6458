public import GenerationCore

/// Whose credits: a key's own, or a team's budget that its member keys share. Both are topped up,
/// deducted and read the same way, so every store has one implementation of each for both.
public enum Account: Sendable, Hashable, CustomStringConvertible {
    case key(String)
    case team(String)

    public var id: String {
        switch self {
        case .key(let id), .team(let id): id
        }
    }

    public var description: String {
        switch self {
        case .key(let id): "key '\(id)'"
        case .team(let id): "team '\(id)'"
        }
    }

    /// What a store throws for an account it does not have.
    var unknown: LedgerError {
        switch self {
        case .key(let id): .unknownKey(id)
        case .team(let id): .unknownTeam(id)
        }
    }
}

/// Where the SQL stores keep an account's credits: a row of running totals, and its entries.
extension Account {
    /// The table of running totals (`balance`, `held`) and the column naming the account in it.
    var totalsTable: (name: String, id: String) {
        switch self {
        case .key: ("balance", "key_id")
        case .team: ("team", "id")
        }
    }

    /// The table of movements and the column naming the account in it.
    var entriesTable: (name: String, owner: String) {
        switch self {
        case .key: ("entry", "key_id")
        case .team: ("team_entry", "team_id")
        }
    }
}

/// A key's or a team's credits.
public struct Balance: Sendable, Equatable, CustomStringConvertible {
    /// Top-ups and adjustments minus charges.
    public let balance: Credits
    /// Open holds.
    public let held: Credits
    /// For a key in a team: what the team has available.
    public let teamAvailable: Credits?
    /// The account's periodic budget in its current period, if it has one.
    public let period: PeriodSpending?
    /// For a key in a team with a periodic budget: the team's, in its current period.
    public let teamPeriod: PeriodSpending?

    public init(
        balance: Credits, held: Credits, teamAvailable: Credits? = nil, period: PeriodSpending? = nil, teamPeriod: PeriodSpending? = nil
    ) {
        self.balance = balance
        self.held = held
        self.teamAvailable = teamAvailable
        self.period = period
        self.teamPeriod = teamPeriod
    }

    /// What the account's own credits still allow.
    public var available: Credits { balance - held }

    /// What can still be reserved now: the smallest of the account's available credits, its
    /// team's, and what is left of either's periodic budget. `x-remaining-credits` shows it.
    public var spendable: Credits {
        [teamAvailable, period?.left, teamPeriod?.left].reduce(available) { least, limit in limit.map { min($0, least) } ?? least }
    }

    public var description: String {
        "balance \(balance), held \(held)" + (teamAvailable.map { ", team available \($0)" } ?? "")
            + (period.map { ", \($0.budget.period) budget left \($0.left)" } ?? "")
            + (teamPeriod.map { ", team \($0.budget.period) budget left \($0.left)" } ?? "")
    }
}

/// What every store checks of a top-up or deduction, before and after its statement.
enum AdjustmentRule {
    static func check(_ amount: Credits) throws(LedgerError) {
        guard amount != .zero else { throw .invalidAmount }
        guard amount.microCredits.magnitude <= Credits.maximum.microCredits.magnitude else { throw .exceedsMaximum }
    }

    /// Why a statement that found the account changed nothing: a top-up would pass the maximum, a
    /// deduction would go below what is available.
    static func refusal(of amount: Credits) -> LedgerError {
        amount > .zero ? .exceedsMaximum : .insufficientBalance
    }

    /// The kind of the entry that records the movement.
    static func entryKind(of amount: Credits) -> String { amount > .zero ? "topup" : "adjustment" }
}
