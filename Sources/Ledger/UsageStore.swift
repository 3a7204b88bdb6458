public import GenerationCore

/// One event per generation request that held credits, for the usage report and reconciliation
/// with upstreams; the requests that held none are counted, a row per key, model, dialect, status
/// and minute.
///
/// A window may still hold millions of events, so a report never reads them all: it asks for the
/// latest few and for totals the store sums itself.
public protocol UsageStore: Sendable {
    func record(_ usage: UsageEvent) async throws(LedgerError)
    /// One more request in the counted event of its key, model, dialect, status and minute (made
    /// by the minute's first), in one statement. A member can send such requests by the tens of
    /// thousands a second at no cost (a key without credits, a malformed body): an event each
    /// would grow the store without bound.
    func count(_ request: CountedRequest) async throws(LedgerError)
    /// The latest `limit` events of `scope`, oldest first (in the order recorded within a millisecond).
    func usage(_ scope: UsageScope, latest limit: Int) async throws(LedgerError) -> [UsageEvent]
    /// How many requests `scope` holds and what they cost, per bucket of time and per value of each
    /// of `columns`: one total for each group that has requests, in no particular order. `cuts`
    /// (ascending) cut the scope's window into buckets: bucket 0 from `from` to the first cut,
    /// bucket `i` from `cuts[i - 1]` to the next cut or to `to`.
    func usageTotals(_ scope: UsageScope, by columns: UsageColumns, cuts: [Timestamp]) async throws(LedgerError) -> [UsageTotal]
}

extension UsageStore {
    /// Every event in `from..<to`, of one key, of a team's keys, or (both nil) of every key, oldest
    /// first: for tests and checks that want each one. Reports read `usage(_:latest:)` and `usageTotals`.
    public func usage(keyID: String?, teamID: String?, from: Timestamp, to: Timestamp) async throws(LedgerError) -> [UsageEvent] {
        try await usage(UsageScope(keyID: keyID, teamID: teamID, from: from, to: to), latest: .max)
    }
}

/// The usage events a report covers: those in `from..<to`, of one key, of a team's keys, or (both
/// nil) of every key.
public struct UsageScope: Sendable, Equatable {
    public var keyID: String?
    public var teamID: String?
    public var from: Timestamp
    public var to: Timestamp

    public init(keyID: String? = nil, teamID: String? = nil, from: Timestamp, to: Timestamp) {
        self.keyID = keyID
        self.teamID = teamID
        self.from = from
        self.to = to
    }

    /// Each bucket's bounds (`UsageStore.usageTotals`), within `from..<to`.
    func buckets(cutAt cuts: [Timestamp]) -> [Range<Timestamp>] {
        zip([from] + cuts, cuts + [to]).map { lower, upper in
            let lower = min(max(lower, from), to)
            return lower..<min(max(upper, lower), to)
        }
    }

    /// The bucket `at` falls in: the number of cuts at or before it.
    static func bucket(of at: Timestamp, cuts: [Timestamp]) -> Int {
        var low = 0, high = cuts.count
        while low < high {
            let middle = (low + high) / 2
            if cuts[middle] <= at { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// What a total of usage events is grouped by, beside its bucket of time.
public struct UsageColumns: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let key = UsageColumns(rawValue: 1)
    public static let model = UsageColumns(rawValue: 2)
    public static let dialect = UsageColumns(rawValue: 4)

    /// The columns of the SQL stores' `usage_event`, in this order.
    var names: [String] {
        [(Self.key, "key_id"), (Self.model, "model"), (Self.dialect, "dialect")].filter { contains($0.0) }.map(\.1)
    }
}

/// The requests of one group of usage events (each counted event stands for its `requests`) and
/// what they cost.
public struct UsageTotal: Sendable, Equatable {
    /// The bucket of time (`UsageStore.usageTotals`).
    public var bucket: Int
    /// The group's key, model and dialect: each nil unless the totals are grouped by it.
    public var keyID: String?
    public var model: String?
    public var dialect: String?
    public var requests: Int
    /// Their cost, exact: the sum of many costs may pass what Int64 holds.
    public var microCredits: Int128

    public init(bucket: Int, keyID: String? = nil, model: String? = nil, dialect: String? = nil, requests: Int, microCredits: Int128) {
        self.bucket = bucket
        self.keyID = keyID
        self.model = model
        self.dialect = dialect
        self.requests = requests
        self.microCredits = microCredits
    }
}

/// One generation request as the usage report shows it, or (`counted`) every request that held
/// nothing of one key, model, dialect and status in one minute.
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
    /// How many requests the event stands for: one, or a counted event's count.
    public var requests: Int
    /// The event counts the requests of its minute (`at`, its start) that held nothing: it names
    /// none of them (no request id), costs nothing, and its duration is the longest of theirs.
    public var counted: Bool

    public init(
        keyID: String, model: String, dialect: String = "", status: Int, cost: Credits, durationMilliseconds: Int64,
        backend: String, requestID: String, at: Timestamp, upstreamCost: String? = nil, upstreamRemainingCredits: String? = nil,
        requests: Int = 1, counted: Bool = false
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
        self.requests = requests
        self.counted = counted
    }
}

/// A request that held no credits, so started no work and moved none: refused before its hold (no
/// credits, its rate, a malformed body, ...) or answered from an earlier one's (a replay). It
/// needs no row of its own: the upstreams' bills have no line for it.
public struct CountedRequest: Sendable, Equatable {
    public var keyID: String
    public var model: String
    public var dialect: String
    public var status: Int
    public var durationMilliseconds: Int64
    public var at: Timestamp

    public init(keyID: String, model: String, dialect: String = "", status: Int, durationMilliseconds: Int64, at: Timestamp) {
        self.keyID = keyID
        self.model = model
        self.dialect = dialect
        self.status = status
        self.durationMilliseconds = durationMilliseconds
        self.at = at
    }

    /// The start of the minute the request is counted in (a moment before 1970 in 1970's first).
    /// Report windows that start and end on whole minutes (hours, days, calendar periods) count it
    /// where it came; one cut inside a minute counts the minute's requests on the side of its start.
    public var minute: Timestamp {
        let at = max(at, 0)
        return at - at % Self.minuteLength
    }

    static let minuteLength: Timestamp = 60_000
}
