/// The executor that the tasks a request starts for itself prefer: the event loop its connection
/// is served on, bound by the gateway's admission boundary for the request's whole handling. An
/// unstructured task does not inherit its starter's executor preference; without this, each such
/// task would wake a thread of Swift's global pool and hand its result back to the loop, two
/// thread switches for nothing. nil (outside a request, or outside a server): the global pool.
public enum RequestExecutor {
    @TaskLocal public static var preferred: (any TaskExecutor)?
}

/// Runs `work` to its end even if the calling task is cancelled (its client left): work the team
/// pays for once it has started (an upstream call, a job on a worker) and the steps that follow
/// completed work (its charge, its answer kept for a retry) happen whether or not anyone still
/// waits for them.
public func uncancelled<T: Sendable>(_ work: @escaping @Sendable () async -> T) async -> T {
    await Task(executorPreference: RequestExecutor.preferred) { await work() }.value
}
