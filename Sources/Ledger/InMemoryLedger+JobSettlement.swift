import GenerationCore

/// The settle of a job that ended, in memory: one step under the ledger's lock, as the SQL stores'
/// one transaction.
extension InMemoryLedger {
    public func settleJob(_ settlement: JobSettlement) async throws(LedgerError) -> Bool {
        let at = now()
        return try locked { (state: inout InMemoryState) throws(LedgerError) -> Bool in
            guard let job = state.jobs[settlement.jobID], job.settledAt == nil, [.completed, .failed].contains(job.record.state) else {
                return false
            }
            do throws(LedgerError) {
                if let charge = settlement.charge {
                    _ = try state.settle(settlement.hold, as: "posted", charge: charge, reason: "charged", at: at)
                } else {
                    _ = try state.settle(settlement.hold, as: "voided", charge: .zero, reason: settlement.releaseReason, at: at)
                }
            } catch .unknownHold, .holdSettled {
                // Nothing to move (a release of a hold that expired); thrown before anything changed.
            }
            state.jobs[settlement.jobID]?.settledAt = at
            state.usage.append(settlement.usage)
            if let webhook = settlement.webhook { _ = state.queue(webhook, at: at) }
            return true
        }
    }

    public func unsettledJobIDs(limit: Int) async throws(LedgerError) -> [String] {
        try locked { state in
            state.jobs.values.filter { $0.record.finishedAt != nil && $0.settledAt == nil }
                .sorted { ($0.record.finishedAt ?? 0, $0.sequence) < ($1.record.finishedAt ?? 0, $1.sequence) }
                .prefix(max(limit, 0)).map(\.record.id)
        }
    }
}
