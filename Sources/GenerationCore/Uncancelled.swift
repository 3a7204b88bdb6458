/// Runs `work` to its end even if the calling task is cancelled (its client left): work the team
/// pays for once it has started (an upstream call, a job on a worker) and the steps that follow
/// completed work (its charge, its answer kept for a retry) happen whether or not anyone still
/// waits for them.
public func uncancelled<T: Sendable>(_ work: @escaping @Sendable () async -> T) async -> T {
    await Task { await work() }.value
}
