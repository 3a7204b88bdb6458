/// How a generation's held credits end: exactly one of `settle` (the backend delivered) or
/// `release` (it did not), with the hold renewed while the backend works. Work the backend completed
/// is settled whether or not its client is still there to receive it. The dialects' `AccessGate`
/// adds who may call and what they may hold. The job executor needs only this beside its job
/// store, which charges or releases a job's hold together with the job's settle (`settled` tells).
public protocol CreditSettlement: Sendable {
    /// Charges the held amount; returns the credits left.
    func settle(_ hold: CreditHold, charge: Credits) async -> Credits?
    /// `settle`, and `recordUsage` in the same step where the ledger can.
    func settle(_ hold: CreditHold, charge: Credits, recording usage: GenerationUsage) async -> Credits?
    /// Keeps the hold of a request whose backend still works open for another hold lifetime;
    /// false if it is no longer open.
    func renew(_ hold: CreditHold) async -> Bool
    /// How often a request renews its hold while its backend works: well within a hold's lifetime.
    var holdRenewalInterval: Duration { get }
    /// Releases the hold without a charge; returns the credits left.
    func release(_ hold: CreditHold, reason: String) async -> Credits?
    /// Records what a request did, for the usage report.
    func recordUsage(_ usage: GenerationUsage) async
    /// The hold of `usage`'s request was charged (`charged`) or released, and its usage recorded,
    /// by a store of its own (a job's settle): what watches settles (metrics, alerts) is told; no
    /// credits move.
    func settled(_ usage: GenerationUsage, charged: Bool) async
    /// Whether the key may still start work: a job queued before its key was revoked, or before it
    /// expired, does not run. (Work under way when that happened ends, and is charged.)
    func mayStillSpend(keyID: String) async -> Bool
}

extension CreditSettlement {
    /// A ledger whose holds never expire has nothing to renew.
    public func renew(_ hold: CreditHold) async -> Bool { true }
    public var holdRenewalInterval: Duration { .seconds(60) }
    /// Nothing watches the settles of a ledger that has no metrics.
    public func settled(_ usage: GenerationUsage, charged: Bool) async {}

    public func settle(_ hold: CreditHold, charge: Credits, recording usage: GenerationUsage) async -> Credits? {
        let remaining = await settle(hold, charge: charge)
        await recordUsage(usage)
        return remaining
    }

    /// Runs `backend` for a request whose price `hold` holds, renewing the hold every
    /// `holdRenewalInterval` until the backend answers. However long the backend's queue and
    /// deadline, the hold cannot expire under work in progress: only a dead gateway's holds expire.
    /// The renewals are made by one task for every generation at work (`HoldRenewals`), so that
    /// a client leaving (which cancels the caller) does not stop them while the work goes on.
    public func generate(
        _ request: GenerationRequest, on backend: any InferenceBackend,
        holding hold: CreditHold
    ) async throws(InferenceError) -> GenerationResult {
        let renewals = HoldRenewals.shared.add(every: holdRenewalInterval) { await self.renew(hold) }
        defer { HoldRenewals.shared.remove(renewals) }
        return try await backend.generate(request)
    }
}

public struct CreditHold: Sendable, Equatable {
    public let id: String

    public init(id: String) {
        self.id = id
    }
}

/// One generation request as the usage report records it.
public struct GenerationUsage: Sendable, Equatable {
    public let keyID: String
    public let model: String
    /// The API the request came in through (`segmind`, `modelslab`, ...), so that the same work
    /// can be compared across dialects; empty where none is known.
    public let dialect: String
    public let status: Int
    /// What was charged.
    public let cost: Credits
    /// What was held for the request (zero if it never got that far); what was not charged of it
    /// went back to the key.
    public let held: Credits
    public let duration: Duration
    public let requestID: String
    /// The upstream that served the request and what it reported charging, when one did.
    public let upstream: UpstreamReport?

    public init(
        keyID: String, model: String, dialect: String = "", status: Int, cost: Credits, held: Credits, duration: Duration,
        requestID: String, upstream: UpstreamReport? = nil
    ) {
        self.keyID = keyID
        self.model = model
        self.dialect = dialect
        self.status = status
        self.cost = cost
        self.held = held
        self.duration = duration
        self.requestID = requestID
        self.upstream = upstream
    }

    /// Nothing was held for the request, so no work started and no credit moved: it was refused
    /// before its hold (no credits, its rate, a malformed body, ...) or answered from an earlier
    /// one's (a replay). The usage report counts such requests rather than listing each: every
    /// request that held credits (charged, or released after work that failed) keeps its own row,
    /// which reconciliation with an upstream's bill needs.
    public var heldNothing: Bool { held == .zero && cost == .zero && upstream == nil }
}
