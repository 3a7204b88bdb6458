import GatewayAPI
import Jobs
import Ledger
import Logging
import Synchronization

/// The background jobs while the gateway runs: the runner, and the upkeep that takes back the jobs
/// of a gateway that died (their holds voided once they fail for good), forgets old jobs and deletes
/// their images after the retention.
final class JobRunnerBox: Sendable {
    private struct Parts: Sendable {
        let runner: JobRunner
        let store: any JobStore
        let executor: GenerationJobExecutor
    }

    private let parts = Mutex<Parts?>(nil)

    func set(_ runner: JobRunner, store: any JobStore, executor: GenerationJobExecutor) {
        parts.withLock { $0 = Parts(runner: runner, store: store, executor: executor) }
    }

    /// Starts the runner and the upkeep; nil when the gateway has no job store.
    func start(retention: Duration, logger: Logger) -> RunningJobs? {
        guard let parts = parts.withLock({ $0 }) else { return nil }
        parts.runner.start()
        let upkeep = Task {
            while !Task.isCancelled {
                let now = SQLiteLedger.systemNow()
                do {
                    for job in try await parts.store.recoverAbandonedJobs(now: now, maxAttempts: 3) {
                        await parts.executor.settle(job, .failed(job.error ?? "the gateway stopped while generating"))
                    }
                    _ = try await parts.store.purgeJobs(finishedBefore: now - retention.components.seconds * 1000)
                } catch {
                    logger.error("job upkeep failed", metadata: ["error": "\(error)"])
                }
                parts.executor.outputs.sweep()
                try? await Task.sleep(for: .seconds(30))
            }
        }
        return RunningJobs(runner: parts.runner, upkeep: upkeep)
    }
}

struct RunningJobs: Sendable {
    let runner: JobRunner
    let upkeep: Task<Void, Never>

    func stop() async {
        upkeep.cancel()
        await runner.stop()
    }
}
