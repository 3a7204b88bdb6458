public import GenerationCore

/// `Idempotency-Key` records in memory: a running claim ends with the hold that backs it, as in
/// the SQL stores (`IdempotencyRecordState` decides for all three).
extension InMemoryLedger {
    public func claimIdempotencyKey(
        keyID: String, key: String, fingerprint: [UInt8], at: Timestamp,
        runningUntil: Timestamp, claim: String
    ) async throws(LedgerError) -> IdempotencyClaim {
        let id = InMemoryState.IdempotencyID(keyID: keyID, key: key)
        return try locked { state in
            let fresh = InMemoryState.IdempotencyRecord(fingerprint: fingerprint, createdAt: at, runningUntil: runningUntil, claim: claim)
            guard let record = state.idempotency[id] else {
                state.idempotency[id] = fresh
                return .claimed
            }
            let recordState = IdempotencyRecordState(
                status: record.answer?.status, holdID: record.holdID,
                holdState: record.holdID.flatMap { state.holds[$0]?.state },
                runningUntil: record.runningUntil)
            if recordState.lapsed(at: at) {
                state.idempotency[id] = fresh
                return .claimed
            }
            guard record.fingerprint == fingerprint else { return .mismatch }
            guard let answer = record.answer else { return .inProgress }
            return .completed(answer)
        }
    }

    public func backIdempotencyKey(keyID: String, key: String, claim: String, with hold: HoldID) async throws(LedgerError) {
        let id = InMemoryState.IdempotencyID(keyID: keyID, key: key)
        try locked { state in
            if let record = state.idempotency[id], record.claim == claim, record.answer == nil { state.idempotency[id]?.holdID = hold.rawValue }
        }
    }

    public func completeIdempotencyKey(keyID: String, key: String, claim: String, answer: StoredAnswer) async throws(LedgerError) {
        let id = InMemoryState.IdempotencyID(keyID: keyID, key: key)
        try locked { state in
            if state.idempotency[id]?.claim == claim { state.idempotency[id]?.answer = answer }
        }
    }

    public func releaseIdempotencyKey(keyID: String, key: String, claim: String) async throws(LedgerError) {
        let id = InMemoryState.IdempotencyID(keyID: keyID, key: key)
        try locked { state in
            if let record = state.idempotency[id], record.claim == claim, record.answer == nil { state.idempotency[id] = nil }
        }
    }

    public func purgeIdempotencyKeys(before cutoff: Timestamp) async throws(LedgerError) -> Int {
        try locked { state in
            let old = state.idempotency.filter { $0.value.createdAt < cutoff }.keys
            for id in old { state.idempotency[id] = nil }
            return old.count
        }
    }
}
