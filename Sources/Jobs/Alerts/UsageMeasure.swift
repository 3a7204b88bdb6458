public import GenerationCore
public import Ledger

/// One quantity the thresholds watch: how much of a limit an account has used. An account's
/// credits are one (spent since its last top-up, of what it had right after it); a period budget
/// is another of the same shape (spent in the current period, of the period's amount).
public struct UsageMeasure: Sendable, Equatable {
    /// What is measured, in the alert's `measure` and in its state's subject: `credits`, `period`.
    public let name: String
    public let account: Account
    public let used: Credits
    public let limit: Credits
    /// What the limit belongs to (a top-up, a period): a new one re-arms every threshold.
    public let epoch: String

    public init(name: String, account: Account, used: Credits, limit: Credits, epoch: String) {
        self.name = name
        self.account = account
        self.used = used
        self.limit = limit
        self.epoch = epoch
    }

    /// The account's credits: what it spent (charges and deductions) since its last top-up, of
    /// the balance it had right after that top-up.
    public static func credits(of account: Account, _ funding: Funding) -> UsageMeasure {
        UsageMeasure(name: "credits", account: account, used: funding.spent, limit: funding.funded, epoch: "topup:" + funding.lastTopUp)
    }

    /// The account's periodic budget: what its current period has held and charged, of the
    /// period's amount. The next period re-arms every threshold.
    public static func period(of account: Account, _ period: PeriodSpending) -> UsageMeasure {
        UsageMeasure(
            name: "period", account: account, used: period.spent, limit: period.budget.amount,
            epoch: "\(period.budget.period.rawValue):\(period.periodStart)")
    }

    /// `key-credits:<id>`, `team-period:<id>`: whose measure and which.
    var subject: String {
        switch account {
        case .key(let id): "key-\(name):\(id)"
        case .team(let id): "team-\(name):\(id)"
        }
    }

    /// How many of `thresholds` (ascending percentages) the use has reached; none without a
    /// positive limit (nothing was funded, or a debt was topped up to less than zero).
    func level(thresholds: [Int]) -> Int {
        guard limit > .zero else { return 0 }
        // In floating point: `used * 100` may pass Int64 for the largest balances, and a
        // percentage needs no micro-credit exactness.
        let percent = percentUsed
        return thresholds.filter { Double($0) <= percent }.count
    }

    var percentUsed: Double { limit > .zero ? Double(used.microCredits) * 100 / Double(limit.microCredits) : 0 }

    /// `percentUsed` as an alert's whole number, within what a JSON reader's double holds exactly:
    /// a budget lowered to a micro-credit after large spending makes it past Int64 (10^19 % and
    /// more), whose conversion would trap.
    var percentShown: Int64 {
        let bound = Double(1 << 53 - 1)
        return Int64(min(max(percentUsed.rounded(.down), -bound), bound))
    }
}

/// The measures a charge to a key may have moved: the key's credits and its team's.
public struct SpendingMeasures: Sendable {
    private let ledger: any Ledger & AlertStore

    public init(ledger: any Ledger & AlertStore) {
        self.ledger = ledger
    }

    public func after(chargeTo keyID: String) async throws(LedgerError) -> [UsageMeasure] {
        var accounts: [Account] = [.key(keyID)]
        if let team = try await ledger.key(id: keyID)?.teamID { accounts.append(.team(team)) }
        var measures: [UsageMeasure] = []
        for account in accounts {
            if let funding = try await ledger.funding(of: account) { measures.append(.credits(of: account, funding)) }
            if let period = try await ledger.balance(of: account).period { measures.append(.period(of: account, period)) }
        }
        return measures
    }
}
