import GenerationCore

/// Keys and credits: who may use the gateway and what they may spend. Every movement of credits is
/// an immutable entry; balances are derived from them and `verify` proves it. Stores: SQLite
/// (embedded default), PostgreSQL (several gateway replicas) and memory (tests of the layers
/// above), behind this one protocol and tested by one contract suite.
///
/// The protocol is the sum of one store per concern, each in a file of its own: keys
/// (`KeyStore`), teams (`TeamStore`), credits and holds (`CreditStore`), idempotency
/// (`IdempotencyStore`), periodic budgets (`BudgetStore`), usage (`UsageStore`), the journal of entries (`JournalStore`)
/// and the admin token (`AdminTokenStore`). A part of the gateway that needs only one of them can say so in its type.
public protocol Ledger: KeyStore, TeamStore, CreditStore, BudgetStore, IdempotencyStore, UsageStore, JournalStore, AdminTokenStore {}

/// Milliseconds since 1970, from an injected clock: expiries are tested by moving a clock, not by waiting.
public typealias Timestamp = Int64

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
    /// A periodic budget names a time zone the store does not know.
    case unknownTimeZone(String)
    /// The database failed; the detail is for logs, not for clients.
    case storage(String)

    /// A database that a newer version of sdgate brought up to date holds what this version could
    /// read wrong (a job whose image is stored where it does not look, say): it is not served.
    static func newerSchema(_ unknown: some Collection<String>) -> LedgerError {
        .storage(
            "the database was brought up to date by a newer version of sdgate (migrations \(unknown.sorted().joined(separator: ", "))), "
                + "which this version cannot serve: run that version, or restore the backup taken before the upgrade")
    }

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
        case .unknownTimeZone(let name): "unknown time zone '\(name)': expected an IANA name such as Europe/Paris or UTC"
        case .storage(let detail): "storage failed: \(detail)"
        }
    }
}
