public import GenerationCore

/// What the operator's alerts keep in the ledger's database: the state of each watched subject
/// (a key's credits, an upstream, a worker), so that an alert goes out once per crossing however
/// often the gateway restarts and however many replicas watch, and what a key's or team's credits
/// were funded with since their last top-up, which the credit thresholds are measured against.
public protocol AlertStore: Sendable {
    /// The account's balance and what it had right after its last top-up; nil before its first one.
    func funding(of account: Account) async throws(LedgerError) -> Funding?
    /// The subject's recorded state; nil when nothing was ever recorded for it.
    func alertState(subject: String) async throws(LedgerError) -> AlertState?
    /// Moves the subject from `expected` to `new` and queues `deliveries` in the same transaction,
    /// so that a state moved is never an alert lost; false (nothing changed, nothing queued) when
    /// the state is no longer `expected`: another replica moved it first.
    func moveAlertState(subject: String, from expected: AlertState?, to new: AlertState, queueing deliveries: [NewWebhook])
        async throws(LedgerError) -> Bool
    /// How many subjects of each kind (a subject's name up to its first `:`) stand at each level.
    func alertStateCounts() async throws(LedgerError) -> [AlertStateCount]
}

public struct AlertStateCount: Sendable, Equatable {
    public let kind: String
    public let level: Int
    public let count: Int

    public init(kind: String, level: Int, count: Int) {
        self.kind = kind
        self.level = level
        self.count = count
    }
}

/// An account's credits against what it was given: the balance right after its last top-up
/// (`funded`) and its balance now. What was spent since (charges and deductions) is the difference.
public struct Funding: Sendable, Equatable {
    /// Names the last top-up: a later one starts a new measure, which re-arms every threshold.
    public let lastTopUp: String
    public let funded: Credits
    public let balance: Credits

    public init(lastTopUp: String, funded: Credits, balance: Credits) {
        self.lastTopUp = lastTopUp
        self.funded = funded
        self.balance = balance
    }

    /// What was spent since the last top-up.
    public var spent: Credits { Credits(microCredits: funded.microCredits - balance.microCredits) }
}

/// Where a watched subject stands: how many of its thresholds it has passed (or 1 for a worker
/// down, an upstream down or low), within `epoch` (what the limit belongs to: a top-up, a period).
public struct AlertState: Sendable, Equatable {
    public var epoch: String
    public var level: Int

    public init(epoch: String, level: Int) {
        self.epoch = epoch
        self.level = level
    }
}
