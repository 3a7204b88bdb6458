import GenerationCore

/// The alerts' states and the credits' funding in memory.
extension InMemoryLedger: AlertStore {
    public func funding(of account: Account) async throws(LedgerError) -> Funding? {
        try locked { (state: inout InMemoryState) throws(LedgerError) -> Funding? in
            guard let totals = state.totals[account] else { throw account.unknown }
            let entries = state.entries[account] ?? []
            guard let lastTopUp = entries.lastIndex(where: { $0.kind == "topup" }) else { return nil }
            let since = entries[(lastTopUp + 1)...].reduce(Int64(0)) { $0 + $1.amount }
            return Funding(
                lastTopUp: String(lastTopUp), funded: Credits(microCredits: totals.balance - since),
                balance: Credits(microCredits: totals.balance))
        }
    }

    public func alertState(subject: String) async throws(LedgerError) -> AlertState? {
        try locked { state in state.alertStates[subject] }
    }

    public func moveAlertState(subject: String, from expected: AlertState?, to new: AlertState, queueing deliveries: [NewWebhook])
        async throws(LedgerError) -> Bool
    {
        let at = now()
        return try locked { state in
            guard state.alertStates[subject] == expected else { return false }
            state.alertStates[subject] = new
            for delivery in deliveries { _ = state.queue(delivery, at: at) }
            return true
        }
    }

    public func alertStateCounts() async throws(LedgerError) -> [AlertStateCount] {
        try locked { state in
            var counts: [String: [Int: Int]] = [:]
            for (subject, alert) in state.alertStates {
                counts[subject.split(separator: ":").first.map(String.init) ?? "", default: [:]][alert.level, default: 0] += 1
            }
            return counts.flatMap { kind, levels in levels.map { AlertStateCount(kind: kind, level: $0.key, count: $0.value) } }
                .sorted { ($0.kind, $0.level) < ($1.kind, $1.level) }
        }
    }
}
