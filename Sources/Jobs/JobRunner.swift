public import GenerationCore
public import Ledger
public import Logging
import Synchronization

/// Runs the queued jobs of a `JobStore`, at most `concurrency` at once, for as long as the
/// application runs.
///
/// It claims a job when one is queued here (`wake`) or, for jobs queued by other replicas, when
/// its poll comes round; it renews a running job's lease until the job ends, so a job is taken back
/// only if its gateway died. A job's credits are settled after its end is recorded (by `settle`,
/// which its store makes once): nothing is charged without an answer. A job whose gateway died in
/// between, or whose settle failed, is left unsettled, its answer served all the same, and the
/// upkeep settles it (`JobStore.unsettledJobIDs`), late against a hold that expired meanwhile.
///
/// A job its key cancels (`cancel`) is removed at once while queued, its hold voided; while it
/// runs, its `GenerationStop` is requested (at once on this replica, at the next poll on the one
/// that runs it), and it ends undelivered: `settle` reads its cancel off the record it is given.
public final class JobRunner: Sendable {
    /// The stop of the job that `execute` runs, for it to hand to the backend.
    @TaskLocal public static var stop: GenerationStop?

    /// What running a job came to.
    public enum Outcome: Sendable {
        /// The dialect's answer, stored with the job.
        case completed([UInt8])
        /// Why it failed, in words a client may read.
        case failed(String)
    }

    public struct Settings: Sendable {
        public var concurrency = 4
        /// How long a claimed job is the runner's without a renewal.
        public var lease: Duration = .seconds(60)
        /// How often the queue is polled for jobs queued by other replicas.
        public var pollInterval: Duration = .seconds(1)

        public init() {}
    }

    private let store: any JobStore
    private let settings: Settings
    private let clock: any WallClock
    private let logger: Logger
    private let execute: @Sendable (JobRecord) async -> Outcome
    private let settle: @Sendable (JobRecord, Outcome) async -> Void
    private let discard: @Sendable (JobRecord) async -> Void
    private let loop: ClaimLoop<JobRecord>
    /// The stops of the jobs running here, by job id.
    private let stops = Mutex<[String: GenerationStop]>([:])

    /// - Parameters:
    ///   - execute: runs a claimed job: generates, stores the outputs, renders the answer.
    ///   - settle: charges or releases the job's credits, once its end is recorded; a job settled
    ///     already (by the upkeep) must be left as it is.
    ///   - discard: deletes what a run stored for a job that failed without it (the upkeep failed
    ///     it for good, or another run of it failed, while this run still worked).
    public init(
        store: any JobStore, settings: Settings, clock: any WallClock, logger: Logger,
        execute: @escaping @Sendable (JobRecord) async -> Outcome,
        settle: @escaping @Sendable (JobRecord, Outcome) async -> Void,
        discard: @escaping @Sendable (JobRecord) async -> Void
    ) {
        self.store = store
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.execute = execute
        self.settle = settle
        self.discard = discard
        loop = ClaimLoop(concurrency: settings.concurrency, pollInterval: settings.pollInterval, label: "jobs", logger: logger)
    }

    public func start() {
        let (store, clock, lease) = (store, clock, settings.lease)
        loop.start(
            claim: { try await store.claimJob(leaseUntil: clock.millisecondsNow + lease.wholeMilliseconds) }, run: { job in await self.run(job) })
    }

    /// A job was queued here: claim it now rather than at the next poll.
    public func wake() {
        loop.wake()
    }

    /// Stops claiming and waits for the running jobs to end.
    public func stop() async {
        await loop.stop()
    }

    /// Cancels the job `id` (the caller checked that its key asks): a queued one is removed and its
    /// hold voided now; a running one is told to stop.
    public func cancel(_ id: String) async throws(LedgerError) -> JobCancellation {
        let cancellation = try await store.cancelJob(id: id)
        switch cancellation {
        case .removed(let job):
            logger.info("job cancelled while queued", metadata: ["job": "\(job.id)"])
            // Removed from the queue: its hold is released whether or not the client who asked
            // is still there (a cancelled task cannot reach PostgreSQL).
            await uncancelled { [settle] in await settle(job, .failed(JobRecord.cancelledError)) }
        case .stopping(let job):
            logger.info("job cancelled while running", metadata: ["job": "\(job.id)"])
            stops.withLock { $0[id] }?.request()
        case .unchanged, .notFound:
            break
        }
        return cancellation
    }

    private func run(_ job: JobRecord) async {
        logger.info("job started", metadata: ["job": "\(job.id)", "model": "\(job.model)", "attempt": "\(job.attempts)"])
        let stop = GenerationStop(id: job.id)
        stops.withLock { $0[job.id] = stop }
        let renewal = Task { await self.keepLease(of: job, stop: stop) }
        let outcome = await Self.$stop.withValue(stop) { await execute(job) }
        renewal.cancel()
        // Only its own: a run taken back may end while the job's next run goes on here.
        stops.withLock { if $0[job.id] === stop { $0.removeValue(forKey: job.id) } }
        let (state, result, error): (JobState, [UInt8]?, String?) =
            switch outcome {
            case .completed(let answer): (.completed, answer, nil)
            case .failed(let message): (.failed, nil, message)
            }
        do {
            guard try await store.finishJob(id: job.id, attempt: job.attempts, state: state, result: result, error: error) else {
                // Its lease ran out: another run has it now and settles it, or it failed, and was
                // settled, while this run still worked. Then what this run stored under its names
                // would be served free.
                logger.warning("job was taken back before it ended", metadata: ["job": "\(job.id)"])
                await discardIfFailed(job)
                return
            }
        } catch {
            // Not recorded: the lease runs out and the job runs again; its hold is still open.
            logger.error("job end not recorded", metadata: ["job": "\(job.id)", "error": "\(error)"])
            return
        }
        // Read back for its cancel, which can no longer change once it ended.
        let ended = try? await store.job(id: job.id)
        let cancelledAt = ended?.cancelledAt ?? (stop.isRequested ? clock.millisecondsNow : nil)
        await settle(job.with(cancelledAt: cancelledAt), outcome)
        logger.info("job ended", metadata: ["job": "\(job.id)", "state": "\(state.rawValue)", "cancelled": "\(cancelledAt != nil)"])
    }

    /// Deletes this run's outputs if its job failed (or was forgotten) meanwhile; a job that
    /// another run may still complete, or did, keeps them, as their names are that run's too.
    private func discardIfFailed(_ job: JobRecord) async {
        do {
            let now = try await store.job(id: job.id)
            if now == nil || now?.state == .failed { await discard(job) }
        } catch {
            logger.error("job taken back not read", metadata: ["job": "\(job.id)", "error": "\(error)"])
        }
    }

    /// Renews the lease every third of it, and looks for a cancel made on another replica every
    /// poll interval.
    private func keepLease(of job: JobRecord, stop: GenerationStop) async {
        let lease = settings.lease
        let look = min(settings.pollInterval, lease / 3)
        var renewed = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: look)
            if Task.isCancelled { return }
            if !stop.isRequested, (try? await store.job(id: job.id))?.cancelledAt != nil { stop.request() }
            if ContinuousClock.now - renewed >= lease / 3 {
                renewed = .now
                _ = try? await store.renewJobLease(id: job.id, attempt: job.attempts, until: clock.millisecondsNow + lease.wholeMilliseconds)
            }
        }
    }
}

extension JobRunner.Outcome {
    /// What a job that ended came to, as its record keeps it; nil for one that has not ended.
    public init?(ended job: JobRecord) {
        switch job.state {
        case .completed: self = .completed(job.result ?? [])
        case .failed: self = .failed(job.error ?? "the job failed")
        case .queued, .processing: return nil
        }
    }
}
