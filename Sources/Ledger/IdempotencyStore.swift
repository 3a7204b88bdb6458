public import GenerationCore

/// `Idempotency-Key` records: a repeated request replays the first one's answer instead of running
/// (and charging) again.
public protocol IdempotencyStore: Sendable {
    /// Claims an idempotency key for a request with this fingerprint, or says what became of it. A
    /// claim runs until `runningUntil` until a hold backs it, then as long as that hold: a claim
    /// whose hold was voided or expired (its gateway died mid-request) is claimed afresh. `claim`
    /// names this claim (a fresh random text): back, complete and release act only on the claim
    /// they name, so a request whose claim was taken over cannot end its successor's.
    func claimIdempotencyKey(
        keyID: String, key: String, fingerprint: [UInt8], at: Timestamp,
        runningUntil: Timestamp, claim: String
    ) async throws(LedgerError) -> IdempotencyClaim
    /// The hold that backs a running claim from now on.
    func backIdempotencyKey(keyID: String, key: String, claim: String, with hold: HoldID) async throws(LedgerError)
    /// Stores the answer of a claimed request, to be replayed to repeats.
    func completeIdempotencyKey(keyID: String, key: String, claim: String, answer: StoredAnswer) async throws(LedgerError)
    /// Gives a claim up (the request failed): a repeat may run again.
    func releaseIdempotencyKey(keyID: String, key: String, claim: String) async throws(LedgerError)
    /// Forgets idempotency keys claimed before `cutoff`; returns how many.
    func purgeIdempotencyKeys(before cutoff: Timestamp) async throws(LedgerError) -> Int
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
