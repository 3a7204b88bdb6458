public import GenerationCore

/// Keys and credits: who may use the gateway and what they may spend. Every movement of credits is
/// an immutable entry; balances are derived from them and `verify` proves it. Stores: SQLite
/// (embedded default) and PostgreSQL (several gateway replicas), behind this one protocol and
/// tested by one contract suite.
///
/// Money moves in two phases, as in TigerBeetle: `reserve` holds an amount (refused if the
/// available balance would go below zero, atomically even under concurrent requests), then exactly
/// one of `post` (charge up to the held amount) or `void`. Holds expire; `expireHolds` voids the
/// overdue ones, so a crash never strands credits. A request renews its hold while its backend
/// works (`renewHold`), so only a dead gateway's holds expire; should one expire under work that
/// still completes, `post` charges the account directly, down into debt if need be: work done is
/// never free.
public protocol Ledger: Sendable {
    /// Creates a key; the secret is returned once and only its SHA-256 is stored.
    func createKey(_ key: NewKey) async throws(LedgerError) -> (key: LedgerKey, secret: String)
    /// The key a secret belongs to, compared in constant time; nil for an unknown secret.
    func key(secret: String) async throws(LedgerError) -> LedgerKey?
    func key(id: String) async throws(LedgerError) -> LedgerKey?
    func keys() async throws(LedgerError) -> [LedgerKey]
    func revoke(keyID: String) async throws(LedgerError)
    /// Replaces a key's limits: its model allow-list, rate limit and expiry (nil: none).
    func setLimits(keyID: String, models: [String]?, rateLimitPerMinute: Int?, expiresAt: Timestamp?) async throws(LedgerError) -> LedgerKey

    /// A top-up (positive) or a deduction (negative), with a reason; a deduction may not take the
    /// available balance below zero.
    func adjust(keyID: String, by amount: Credits, reason: String) async throws(LedgerError) -> Balance
    /// A key's balance; for a member of a team, with what the team has available.
    func balance(keyID: String) async throws(LedgerError) -> Balance

    /// Creates a team, whose budget its member keys share on top of their own; names are unique.
    func createTeam(name: String) async throws(LedgerError) -> LedgerTeam
    func team(id: String) async throws(LedgerError) -> LedgerTeam?
    func teams() async throws(LedgerError) -> [LedgerTeam]
    /// A top-up or deduction of a team's budget, as `adjust(keyID:by:reason:)` for a key.
    func adjust(teamID: String, by amount: Credits, reason: String) async throws(LedgerError) -> Balance
    func balance(teamID: String) async throws(LedgerError) -> Balance

    /// Holds `amount` of the key's credits and, for a member of a team, of the team's in the same
    /// atomic step: refused if either would go below zero.
    func reserve(keyID: String, amount: Credits, expiresAt: Timestamp) async throws(LedgerError) -> Reservation
    /// Keeps an open hold open until `expiresAt` at least (never shortens it): its request is still
    /// at work. False if the hold is no longer open.
    func renewHold(_ hold: HoldID, until expiresAt: Timestamp) async throws(LedgerError) -> Bool
    /// Charges `charge` (at most the held amount) and releases the hold. A hold that expired before
    /// its charge (the work outlived it) is charged all the same, from the account and its team
    /// directly, even below zero: the debt stands in a post entry whose reason says so. A posted or
    /// voided hold refuses (`holdSettled`).
    func post(_ hold: HoldID, charge: Credits) async throws(LedgerError) -> Balance
    /// `post`, and the request's usage event recorded with it (in the same transaction where the
    /// store can: one commit fewer for every request served).
    func post(_ hold: HoldID, charge: Credits, recording usage: UsageEvent) async throws(LedgerError) -> Balance
    /// Releases the hold without a charge.
    func void(_ hold: HoldID, reason: String) async throws(LedgerError) -> Balance
    /// Voids every open hold whose expiry is at or before `now`; returns how many.
    func expireHolds(now: Timestamp) async throws(LedgerError) -> Int
    /// The holds open now, of every key, and the credits they hold together.
    func openHolds() async throws(LedgerError) -> OpenHolds

    /// Recomputes every balance from the entries and the holds; each difference found, in words.
    func verify() async throws(LedgerError) -> [String]

    /// The SHA-256 of the admin token the gateway generated on its first start, if it did.
    func storedAdminTokenHash() async throws(LedgerError) -> [UInt8]?
    /// Stores the hash of a generated admin token, unless one is stored already; true if stored.
    func storeAdminTokenHash(_ hash: [UInt8]) async throws(LedgerError) -> Bool

    /// Claims an idempotency key for a request with this fingerprint, or says what became of it. A
    /// claim runs until `runningUntil` until a hold backs it, then as long as that hold: a claim
    /// whose hold was voided or expired (its gateway died mid-request) is claimed afresh.
    func claimIdempotencyKey(keyID: String, key: String, fingerprint: [UInt8], at: Timestamp,
                             runningUntil: Timestamp) async throws(LedgerError) -> IdempotencyClaim
    /// The hold that backs a running claim from now on.
    func backIdempotencyKey(keyID: String, key: String, with hold: HoldID) async throws(LedgerError)
    /// Stores the answer of a claimed request, to be replayed to repeats.
    func completeIdempotencyKey(keyID: String, key: String, answer: StoredAnswer) async throws(LedgerError)
    /// Gives a claim up (the request failed): a repeat may run again.
    func releaseIdempotencyKey(keyID: String, key: String) async throws(LedgerError)
    /// Forgets idempotency keys claimed before `cutoff`; returns how many.
    func purgeIdempotencyKeys(before cutoff: Timestamp) async throws(LedgerError) -> Int

    func record(_ usage: UsageEvent) async throws(LedgerError)
    /// Usage events in `from..<to`, of one key, of a team's keys, or (both nil) of every key.
    func usage(keyID: String?, teamID: String?, from: Timestamp, to: Timestamp) async throws(LedgerError) -> [UsageEvent]
}

extension Ledger {
    /// A team by its id or, failing that, by its name.
    public func team(idOrName reference: String) async throws(LedgerError) -> LedgerTeam? {
        if let team = try await team(id: reference) { return team }
        return try await teams().first { $0.name == reference }
    }
}

/// Milliseconds since 1970, from an injected clock: expiries are tested by moving a clock, not by waiting.
public typealias Timestamp = Int64

public struct NewKey: Sendable {
    public var name: String
    public var expiresAt: Timestamp?
    /// The models this key may use; nil for all.
    public var models: [String]?
    public var rateLimitPerMinute: Int?
    /// The team whose budget the key also draws on.
    public var teamID: String?

    public init(name: String, expiresAt: Timestamp? = nil, models: [String]? = nil, rateLimitPerMinute: Int? = nil, teamID: String? = nil) {
        self.name = name
        self.expiresAt = expiresAt
        self.models = models
        self.rateLimitPerMinute = rateLimitPerMinute
        self.teamID = teamID
    }
}

public struct LedgerKey: Sendable, Equatable {
    public let id: String
    public let name: String
    public let createdAt: Timestamp
    public let expiresAt: Timestamp?
    public let revokedAt: Timestamp?
    public let models: [String]?
    public let rateLimitPerMinute: Int?
    public let teamID: String?

    public func isUsable(at now: Timestamp) -> Bool {
        Self.isUsable(revokedAt: revokedAt, expiresAt: expiresAt, at: now)
    }

    static func isUsable(revokedAt: Timestamp?, expiresAt: Timestamp?, at now: Timestamp) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}

/// A team: its members' keys draw on its budget as well as on their own.
public struct LedgerTeam: Sendable, Equatable {
    public let id: String
    public let name: String
    public let createdAt: Timestamp
}

/// A key's or a team's credits.
public struct Balance: Sendable, Equatable, CustomStringConvertible {
    /// Top-ups and adjustments minus charges.
    public let balance: Credits
    /// Open holds.
    public let held: Credits
    /// For a key in a team: what the team has available.
    public let teamAvailable: Credits?

    public init(balance: Credits, held: Credits, teamAvailable: Credits? = nil) {
        self.balance = balance
        self.held = held
        self.teamAvailable = teamAvailable
    }

    /// What the account's own credits still allow.
    public var available: Credits { balance - held }

    /// What can still be reserved: the account's own available credits, capped by its team's.
    /// `x-remaining-credits` shows it.
    public var spendable: Credits { teamAvailable.map { min($0, available) } ?? available }

    public var description: String {
        "balance \(balance), held \(held)" + (teamAvailable.map { ", team available \($0)" } ?? "")
    }
}

/// Every open hold together: requests that hold credits and have not settled yet.
public struct OpenHolds: Sendable, Equatable {
    public let count: Int
    public let amount: Credits

    public init(count: Int, amount: Credits) {
        self.count = count
        self.amount = amount
    }
}

public struct HoldID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// `available` is what the key can still spend (its team's budget included) after the reservation.
public enum Reservation: Sendable, Equatable {
    case held(HoldID, available: Credits)
    case insufficient(available: Credits)
}

public enum IdempotencyClaim: Sendable, Equatable {
    /// The key is new: the request runs.
    case claimed
    /// The same request ran before: its answer.
    case completed(StoredAnswer)
    /// The same request is running now.
    case inProgress
    /// The key was used for a different request.
    case mismatch
}

/// An answer kept for idempotent replays.
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

/// One generation request, as the usage report shows it.
public struct UsageEvent: Sendable, Equatable {
    public var keyID: String
    public var model: String
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

    public init(keyID: String, model: String, status: Int, cost: Credits, durationMilliseconds: Int64, backend: String,
                requestID: String, at: Timestamp, upstreamCost: String? = nil, upstreamRemainingCredits: String? = nil) {
        self.keyID = keyID
        self.model = model
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

public enum LedgerError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownKey(String)
    /// The key is revoked or expired.
    case unusableKey(String)
    case unknownTeam(String)
    case teamExists(String)
    case unknownHold(HoldID)
    /// The hold was already posted, voided or expired.
    case holdSettled(HoldID)
    case chargeExceedsHold(HoldID)
    case insufficientBalance
    case invalidAmount
    /// The movement would take an account past `Credits.maximum`.
    case exceedsMaximum
    /// The key has this many jobs queued already.
    case tooManyQueuedJobs(limit: Int)
    /// The database failed; the detail is for logs, not for clients.
    case storage(String)

    public var description: String {
        switch self {
        case .unknownKey(let id): "no key '\(id)'"
        case .unusableKey(let id): "key '\(id)' is revoked or expired"
        case .unknownTeam(let id): "no team '\(id)'"
        case .teamExists(let name): "a team named '\(name)' exists already"
        case .unknownHold(let hold): "no hold '\(hold)'"
        case .holdSettled(let hold): "hold '\(hold)' is already settled"
        case .chargeExceedsHold(let hold): "the charge is larger than hold '\(hold)'"
        case .insufficientBalance: "the available balance is too low"
        case .invalidAmount: "the amount must not be zero"
        case .exceedsMaximum: "an account may hold at most \(Credits.maximum) credits"
        case .tooManyQueuedJobs(let limit): "the key has \(limit) jobs queued already"
        case .storage(let detail): "storage failed: \(detail)"
        }
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
}

/// The ranges a key's limits must lie in, checked by the admin API and the command line before
/// any arithmetic on them.
public enum KeyLimits {
    /// A request a minute at the least (a rate of zero would never refill), a million at the most.
    public static let requestsPerMinute: ClosedRange<Int> = 1...1_000_000
    /// Up to a hundred years.
    public static let lifetimeDays: ClosedRange<Int> = 1...36_500

    /// When a key given `days` to live at `now` expires: `days` is clamped to `lifetimeDays`, so the
    /// arithmetic stays far inside 64 bits whatever the caller checked.
    public static func expiry(days: Int, from now: Timestamp) -> Timestamp {
        now + Int64(min(max(days, lifetimeDays.lowerBound), lifetimeDays.upperBound)) * 86_400_000
    }

    /// Why a rate limit or a lifetime given on the command line is refused; nil when both are in range.
    public static func problem(rateLimit: Int?, lifetimeDays days: Int?) -> String? {
        if let rateLimit, !requestsPerMinute.contains(rateLimit) {
            return "--rate-limit must be from \(requestsPerMinute.lowerBound) to \(requestsPerMinute.upperBound)"
        }
        if let days, !lifetimeDays.contains(days) {
            return "--expires-in-days must be from \(lifetimeDays.lowerBound) to \(lifetimeDays.upperBound)"
        }
        return nil
    }
}

extension Ledger {
    /// The reason on the entries of a charge made after its hold expired.
    public static var lateChargeReason: String { "charged after its hold expired: the work outlived it" }
}
