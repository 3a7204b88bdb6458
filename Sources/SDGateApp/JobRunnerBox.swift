import Foundation
import GatewayAPI
import GenerationCore
import Jobs
import Ledger
import Logging
import Synchronization

/// The background jobs while the gateway runs: the runner, the webhook dispatcher, and the upkeep
/// that settles the jobs a gateway that died left ended but unsettled, takes back the jobs it left
/// running (their holds voided once they fail for good), fails the jobs that waited in the queue
/// too long, forgets old jobs and webhooks and deletes their images after the retention.
final class JobRunnerBox: Sendable {
    private struct Parts: Sendable {
        let runner: JobRunner
        let store: any GatewayStorage
        let executor: GenerationJobExecutor
    }

    private let parts = Mutex<Parts?>(nil)

    func set(_ runner: JobRunner, store: any GatewayStorage, executor: GenerationJobExecutor) {
        parts.withLock { $0 = Parts(runner: runner, store: store, executor: executor) }
    }

    /// Starts the runner and the upkeep; nil when the gateway has no job store.
    func start(_ upkeep: JobUpkeep, logger: Logger) -> RunningJobs? {
        guard let parts = parts.withLock({ $0 }) else { return nil }
        parts.runner.start()
        parts.executor.webhooks?.dispatcher.start()
        let task = Task {
            while !Task.isCancelled {
                do {
                    try await upkeep.run(parts.store, settle: parts.executor.settle)
                } catch {
                    logger.error("job upkeep failed", metadata: ["error": "\(error)"])
                }
                await parts.executor.outputs.sweep(now: Date())
                try? await Task.sleep(for: upkeep.interval)
            }
        }
        return RunningJobs(runner: parts.runner, webhooks: parts.executor.webhooks?.dispatcher, upkeep: task)
    }
}

/// One round of the job queue's upkeep.
struct JobUpkeep: Sendable {
    let lease: Duration
    let maxQueueTime: Duration
    let retention: Duration
    /// A dead gateway's jobs run again soon after their lease runs out.
    var interval: Duration { min(.seconds(30), lease / 2) }
    /// Runs that end with the gateway stopping this many times fail the job.
    static let maxAttempts = 3
    /// The most unsettled jobs one round settles; any more wait for the next.
    static let settlesPerRound = 1000

    func run(_ store: any GatewayStorage, settle: (JobRecord, JobRunner.Outcome) async -> Void) async throws {
        // A job that ended but was never settled (its gateway died between the two, or its settle
        // failed) has its answer and images served: it is charged (or released) now, once. One
        // its runner settles meanwhile is settled by whichever comes first; the other changes nothing.
        for id in try await store.unsettledJobIDs(limit: Self.settlesPerRound) {
            if let job = try await store.job(id: id), let outcome = JobRunner.Outcome(ended: job) { await settle(job, outcome) }
        }
        let now = SystemWallClock().millisecondsNow
        // Each statement's failed jobs are settled before the next statement runs: they are
        // failed for good once it commits, and one that throws after it must not leave them unsettled.
        for job in try await store.recoverAbandonedJobs(now: now, maxAttempts: Self.maxAttempts) {
            await settle(job, .failed(job.error ?? "the job failed"))
        }
        for job in try await store.expireQueuedJobs(queuedBefore: now - maxQueueTime.wholeMilliseconds) {
            await settle(job, .failed(job.error ?? "the job failed"))
        }
        _ = try await store.purgeJobs(finishedBefore: now - retention.wholeMilliseconds)
        try await store.purgeWebhooks(endedBefore: now - retention.wholeMilliseconds)
    }
}

struct RunningJobs: Sendable {
    let runner: JobRunner
    let webhooks: WebhookDispatcher?
    let upkeep: Task<Void, Never>

    /// The jobs first, which may queue webhooks; the webhooks not yet sent wait in the database.
    func stop() async {
        upkeep.cancel()
        await runner.stop()
        await webhooks?.stop()
    }
}
