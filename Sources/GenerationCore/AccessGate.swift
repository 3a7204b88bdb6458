/// Who may use the gateway, and what they may spend: the dialects' only view of keys and credits.
/// The credit ledger implements it (`LedgerGate`).
///
/// Credits move in two phases around every generation: `reserve` before the backend runs, then
/// `CreditSettlement`'s settle or release.
public protocol AccessGate: CreditSettlement {
    /// The key's identity if the key is known, unrevoked and unexpired.
    func authenticate(apiKey: String) async -> AuthenticatedKey?
    /// The key's available credits, shown as `x-remaining-credits`; nil if they cannot be read now.
    func remaining(for key: AuthenticatedKey) async -> Credits?
    /// Holds `amount` for as long as a request may take to settle it: the hold lifetime, plus
    /// `queueTime` for a job that may wait that long in the queue before it runs.
    func reserve(_ amount: Credits, for key: AuthenticatedKey, queuedUpTo queueTime: Duration) async -> CreditReservation

    /// Claims an `Idempotency-Key` for a request with this fingerprint, or says what became of it.
    func claimIdempotency(_ idempotencyKey: String, fingerprint: [UInt8], for key: AuthenticatedKey) async -> IdempotencyOutcome
    /// The hold that backs a claimed `Idempotency-Key` from now on: should the request die with its
    /// gateway, the claim ends with the hold, and a repeat runs afresh.
    func backIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, with hold: CreditHold) async
    /// Keeps a claimed request's answer for repeats.
    func completeIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, answer: StoredAnswer) async
    /// Gives a claim up: the request failed, and a repeat may run again.
    func releaseIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey) async
}

extension AccessGate {
    public func backIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, with hold: CreditHold) async {}

    /// Holds `amount` for a request that runs at once.
    public func reserve(_ amount: Credits, for key: AuthenticatedKey) async -> CreditReservation {
        await reserve(amount, for: key, queuedUpTo: .zero)
    }
}

/// A claimed `Idempotency-Key`, and which claim of it is the request's. A claim whose request died
/// (its hold voided or expired) is taken over by a repeat, as a claim of its own: the request that
/// lost it must not then end it, or a third repeat would run beside the second.
public struct IdempotencyTicket: Sendable, Equatable {
    public let key: String
    public let claim: String

    public init(key: String, claim: String) {
        self.key = key
        self.claim = claim
    }
}

public enum IdempotencyOutcome: Sendable {
    /// The key is new (or its claim lapsed): run the request, which holds this claim.
    case proceed(IdempotencyTicket)
    /// The same request ran before: answer as it did.
    case replay(StoredAnswer)
    case inProgress
    /// The key was used for a different request.
    case mismatch
    case unavailable
}

public struct AuthenticatedKey: Sendable, Equatable {
    /// A stable, non-secret id for logs and usage (never the key itself).
    public let id: String
    /// The models this key may use; nil for every model.
    public let models: [String]?
    /// Requests per minute this key may make; nil for no limit.
    public let rateLimitPerMinute: Int?

    public init(id: String, models: [String]? = nil, rateLimitPerMinute: Int? = nil) {
        self.id = id
        self.models = models
        self.rateLimitPerMinute = rateLimitPerMinute
    }

    public func allows(model: String) -> Bool { models?.contains(model) ?? true }
}

public enum CreditReservation: Sendable, Equatable {
    case held(CreditHold, remaining: Credits)
    case insufficient(remaining: Credits)
    /// The key was revoked or expired since it authenticated: the answer is the invalid key's.
    case unauthorized
    /// The ledger could not be reached; the request is refused rather than served unmetered.
    case unavailable
}

/// An answer kept for idempotent replays: its status, its headers as name-value pairs, its body.
public struct StoredAnswer: Sendable, Equatable {
    public let status: Int
    public let headers: [[String]]
    public let body: [UInt8]

    public init(status: Int, headers: [[String]], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}
