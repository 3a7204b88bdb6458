import GenerationCore

/// The journal of the in-memory twin: every account's entries, numbered in the order it recorded them.
extension InMemoryLedger {
    public func journal(from: Timestamp, to: Timestamp, after position: JournalPosition?, limit: Int) async throws(LedgerError) -> [JournalEntry] {
        let entries = state.withLock { state in
            state.entries.flatMap { account, entries in
                entries.enumerated().map { index, entry in
                    JournalEntry(
                        position: JournalPosition(at: entry.at, account: account, sequence: Int64(index) + 1), kind: entry.kind,
                        amount: Credits(microCredits: entry.amount), holdID: entry.holdID, reason: entry.reason)
                }
            }
        }
        let after = entries.filter { entry in entry.at >= from && entry.at < to && position.map { entry.position > $0 } ?? true }
        return Array(after.sorted { $0.position < $1.position }.prefix(max(limit, 0)))
    }
}
