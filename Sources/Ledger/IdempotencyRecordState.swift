/// What a stored `Idempotency-Key` record says about its request, and whether its claim has
/// lapsed: the same rule for every store.
struct IdempotencyRecordState {
    /// The stored answer's status; nil while the request runs.
    let status: Int?
    let holdID: String?
    /// The state of the hold that backs the claim (`open`, `posted`, `voided`, `expired`).
    let holdState: String?
    /// Until when a claim without a hold stands; nil for records kept before claims lapsed.
    let runningUntil: Int64?

    /// A running claim lapses when its hold was voided or expired (its request died without an
    /// answer), or when no hold came to back it in time. A posted hold does not lapse it: the
    /// request was charged and its answer is on the way.
    func lapsed(at now: Int64) -> Bool {
        guard status == nil else { return false }
        if holdID != nil { return holdState == "voided" || holdState == "expired" || holdState == nil }
        return runningUntil.map { $0 <= now } ?? false
    }
}
