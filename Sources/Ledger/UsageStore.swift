public import GenerationCore

/// One event per generation request, for the usage report and reconciliation with upstreams.
public protocol UsageStore: Sendable {
    func record(_ usage: UsageEvent) async throws(LedgerError)
    /// Usage events in `from..<to`, of one key, of a team's keys, or (both nil) of every key.
    func usage(keyID: String?, teamID: String?, from: Timestamp, to: Timestamp) async throws(LedgerError) -> [UsageEvent]
}

/// One generation request, as the usage report shows it.
public struct UsageEvent: Sendable, Equatable {
    public var keyID: String
    public var model: String
    /// The API the request came in through (`segmind`, `modelslab`, ...); empty for the events
    /// recorded before dialects were.
    public var dialect: String
    public var status: Int
    public var cost: Credits
    public var durationMilliseconds: Int64
    public var backend: String
    public var requestID: String
    public var at: Timestamp
    /// What the upstream reported charging the team, and the team's balance there afterwards, in
    /// the upstream's own unit and as it wrote them (for reconciliation); nil when none reported.
    public var upstreamCost: String?
    public var upstreamRemainingCredits: String?

    public init(
        keyID: String, model: String, dialect: String = "", status: Int, cost: Credits, durationMilliseconds: Int64,
        backend: String, requestID: String, at: Timestamp, upstreamCost: String? = nil, upstreamRemainingCredits: String? = nil
    ) {
        self.keyID = keyID
        self.model = model
        self.dialect = dialect
        self.status = status
        self.cost = cost
        self.durationMilliseconds = durationMilliseconds
        self.backend = backend
        self.requestID = requestID
        self.at = at
        self.upstreamCost = upstreamCost
        self.upstreamRemainingCredits = upstreamRemainingCredits
    }
}
