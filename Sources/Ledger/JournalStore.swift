public import GenerationCore

/// Every movement of credits, of keys and of teams, in the order they were recorded: what an
/// accountant reconciles the gateway's books with. Read a page at a time, so that exporting a year
/// of entries holds one page in memory, not the year.
public protocol JournalStore: Sendable {
    /// Up to `limit` entries recorded in `from..<to` that come after `position` (nil: from the
    /// first), in `JournalPosition` order.
    func journal(from: Timestamp, to: Timestamp, after position: JournalPosition?, limit: Int) async throws(LedgerError) -> [JournalEntry]
}

/// One movement of an account's credits, never changed: a top-up, an adjustment or the charge of
/// a request (`post`, with the hold it settled). Voided holds move nothing and have no entry.
public struct JournalEntry: Sendable, Equatable {
    public let position: JournalPosition
    public let kind: String
    /// Positive for credits in, negative for credits out.
    public let amount: Credits
    public let holdID: String?
    public let reason: String

    public var account: Account { position.account }
    public var at: Timestamp { position.at }
}

/// Where an entry stands in the journal: by time, then keys' entries before teams', then by the
/// account and the order in which its entries were recorded. A page ends at the last entry's
/// position, and the next starts after it.
public struct JournalPosition: Sendable, Equatable, Comparable {
    public let at: Timestamp
    public let account: Account
    /// The entry's number among its account's kind of entries (the SQL stores' row id).
    public let sequence: Int64

    public init(at: Timestamp, account: Account, sequence: Int64) {
        self.at = at
        self.account = account
        self.sequence = sequence
    }

    /// 0 for a key's entry, 1 for a team's: the order the SQL stores sort them in.
    var accountRank: Int {
        switch account {
        case .key: 0
        case .team: 1
        }
    }

    public static func < (lhs: JournalPosition, rhs: JournalPosition) -> Bool {
        (lhs.at, lhs.accountRank, lhs.account.id, lhs.sequence) < (rhs.at, rhs.accountRank, rhs.account.id, rhs.sequence)
    }
}
