import Synchronization

/// Tells the requests that wait for a job (a v3 call that answers at once when the job is quick)
/// that it ended here, so they need not poll the database. Jobs that end on another replica are
/// seen by the waiter's own checks of the store.
public final class JobCompletions: Sendable {
    private let waiters = Mutex<[String: [UInt64: CheckedContinuation<Void, Never>]]>([:])
    private let nextWaiter = Atomic<UInt64>(0)

    public init() {}

    /// Returns when the job ends here, after `timeout`, or when the task is cancelled.
    public func wait(for id: String, upTo timeout: Duration) async {
        let waiter = nextWaiter.add(1, ordering: .relaxed).newValue
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        self.waiters.withLock { $0[id, default: [:]][waiter] = continuation }
                        // Cancelled before it was registered: the handler found nothing to resume.
                        if Task.isCancelled { self.resume(id, waiter) }
                    }
                } onCancel: {
                    self.resume(id, waiter)
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// The job ended: every waiter for it goes on.
    public func finished(_ id: String) {
        let continuations = waiters.withLock { $0.removeValue(forKey: id) } ?? [:]
        for continuation in continuations.values { continuation.resume() }
    }

    private func resume(_ id: String, _ waiter: UInt64) {
        let continuation = waiters.withLock { waiters -> CheckedContinuation<Void, Never>? in
            let continuation = waiters[id]?.removeValue(forKey: waiter)
            if waiters[id]?.isEmpty == true { waiters[id] = nil }
            return continuation
        }
        continuation?.resume()
    }
}
