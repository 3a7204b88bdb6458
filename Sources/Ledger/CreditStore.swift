public import GenerationCore

/// Credits and holds. Money moves in two phases, as in TigerBeetle: `reserve` holds an amount
/// (refused if the available balance would go below zero, atomically even under concurrent
/// requests), then exactly one of `post` (charge up to the held amount) or `void`. Holds expire;
/// `expireHolds` voids the overdue ones, so a crash never strands credits. A request renews its hold
/// while its backend works (`renewHold`), so only a dead gateway's holds expire; should one expire
/// under work that still completes, `post` charges the account directly, down into debt if need
/// be: work done is never free.
public protocol CreditStore: Sendable {
    /// A top-up (positive) or a deduction (negative) of a key's or a team's credits, with a reason;
    /// a deduction may not take the available balance below zero, nor a top-up the balance past
    /// `Credits.maximum`.
    func adjust(_ account: Account, by amount: Credits, reason: String) async throws(LedgerError) -> Balance
    /// An account's balance; for a key in a team, with what the team has available.
    func balance(of account: Account) async throws(LedgerError) -> Balance

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
}

extension CreditStore {
    /// The reason on the entries of a charge made after its hold expired.
    public static var lateChargeReason: String { "charged after its hold expired: the work outlived it" }
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
