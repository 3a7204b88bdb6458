public import GenerationCore

extension AccessGate {
    /// Runs `backend` for a request whose price `hold` holds, renewing the hold every
    /// `holdRenewalInterval` until the backend answers. However long the backend's queue and
    /// deadline, the hold cannot expire under work in progress: only a dead gateway's holds expire.
    /// The renewals run on their own task, so that a client leaving (which cancels the caller)
    /// does not stop them while the work goes on.
    public func generate(_ request: GenerationRequest, on backend: any InferenceBackend,
                         holding hold: CreditHold) async throws(InferenceError) -> GenerationResult {
        let interval = holdRenewalInterval
        let renewals = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                guard await renew(hold) else { return }
            }
        }
        defer { renewals.cancel() }
        return try await backend.generate(request)
    }
}

/// Runs `work` to its end even if the calling task is cancelled (its client left): the steps that
/// follow completed work (its charge, its answer kept for a retry) happen whether or not anyone
/// still waits for them.
public func uncancelled<T: Sendable>(_ work: @escaping @Sendable () async -> T) async -> T {
    await Task { await work() }.value
}
