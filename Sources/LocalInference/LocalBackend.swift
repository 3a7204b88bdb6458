import AsyncHTTPClient
package import CoreMetrics
package import GenerationCore
package import Logging
import Synchronization

/// Generation on the team's own GPUs: a pool of worker processes, one request at a time each, or
/// as many as a batching worker says it takes (`max_batch` in its health answer), which it runs
/// together when they are compatible.
///
/// Workers are spawned and kept alive here (restarted with backoff when they die or stop passing
/// their health checks), or reached at the URLs of workers running on other hosts. Requests wait
/// for a free worker in a bounded queue, served round-robin across keys; a full queue answers
/// `busy`, and a request whose client goes away (its task is cancelled) leaves the queue before it
/// starts; once started, it runs to its end and is charged, unless its `GenerationStop` is
/// requested (its job was cancelled): the worker is then told to stop it between steps.
///
/// Metrics: `sdgate_worker_queue_depth` (requests waiting now), `sdgate_workers_up`, and
/// `sdgate_worker_queue_wait_seconds` (how long each request waited for its worker).
package final class LocalBackend: InferenceBackend {
    package struct Settings: Sendable {
        /// Requests that may wait for a worker, in all and per key; beyond them, `busy`.
        package var queueLimit = 64
        package var queueLimitPerKey = 8
        /// The longest a request waits for a worker before it is answered `busy`.
        package var maxWait: Duration = .seconds(300)
        /// Longest time one generation may take on a worker.
        package var deadline: Duration = .seconds(300)
        /// The longest pause between restarts of a worker that keeps dying.
        package var maxRestartDelay: Duration = .seconds(30)
        /// How long a spawned worker may take to say where it listens (loading, or downloading,
        /// its weights with `--preload`): past it, it is killed and started again.
        package var startTimeout: Duration = .seconds(1800)
        /// How often each worker's health is checked, and how long a check may take. A spawned
        /// worker that fails `failedChecksBeforeRestart` checks in a row is killed and restarted;
        /// a remote one is left out until it passes again.
        package var healthCheckInterval: Duration = .seconds(10)
        package var healthCheckTimeout: Duration = .seconds(5)
        package var failedChecksBeforeRestart = 3
        /// How long a spawned worker may take to exit after SIGTERM before it is killed.
        package var stopGracePeriod: Duration = .seconds(10)

        package init() {}
    }

    /// The pool's gauges, set under the pool's lock whenever what they show changes.
    private struct Gauges: Sendable {
        let queueDepth: Gauge
        let workersUp: Gauge
        let queueWait: Timer

        func show(_ pool: borrowing WorkerPool) {
            queueDepth.record(pool.waiting.count)
            workersUp.record(pool.workersUp)
        }
    }

    private let settings: Settings
    private let client: WorkerClient
    private let logger: Logger
    private let pool: Mutex<WorkerPool>
    private let gauges: Gauges
    private let supervisors = Mutex<[Task<Void, Never>]>([])
    private let onWorkers = Atomic<Int>(0)
    /// Told when a worker (by index) joins the pool (true) or leaves it (false), for the alerts;
    /// not when the gateway stops its workers.
    private let workerChanged: @Sendable (Int, Bool) -> Void

    package init(
        settings: Settings, logger: Logger, metrics: any MetricsFactory = NOOPMetricsHandler.instance,
        workerChanged: @escaping @Sendable (Int, Bool) -> Void = { _, _ in }
    ) {
        self.settings = settings
        self.logger = logger
        self.workerChanged = workerChanged
        gauges = Gauges(
            queueDepth: Gauge(label: "sdgate_worker_queue_depth", factory: metrics),
            workersUp: Gauge(label: "sdgate_workers_up", factory: metrics),
            queueWait: Timer(label: "sdgate_worker_queue_wait_seconds", factory: metrics))
        // A worker answers, it does not send the gateway elsewhere: a redirect would POST the
        // member's request wherever it pointed. An idle connection is closed by the gateway before
        // the worker closes it (after 75 s): a request sent as the worker closed its connection
        // would fail, and is not sent again.
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool.idleTimeout = .seconds(60)
        client = WorkerClient(http: HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration))
        pool = Mutex(WorkerPool(waiting: FairQueue(capacity: settings.queueLimit, capacityPerKey: settings.queueLimitPerKey)))
    }

    /// Spawns a worker and keeps it running until `shutdown`.
    package func spawn(_ command: WorkerCommand) {
        let worker = pool.withLock { $0.addWorker() }
        launch { await self.supervise(worker, command) }
    }

    /// Adds a worker running elsewhere, at `url` (`http://host:port`), that wants `token` (the
    /// value of its `SDGATE_WORKER_TOKEN`). It is not ours to restart: it is used while its health
    /// checks pass.
    package func connect(to url: String, token: String?) {
        let worker = pool.withLock { $0.addWorker() }
        launch {
            while !Task.isCancelled {
                await self.watch(worker, ListeningWorker(url: url, processIdentifier: nil, token: token))
                try? await Task.sleep(for: self.settings.healthCheckInterval)
            }
        }
    }

    private func launch(_ work: @escaping @Sendable () async -> Void) {
        let task = Task { await work() }
        supervisors.withLock { $0.append(task) }
    }

    /// Stops the spawned workers (SIGTERM, then SIGKILL after the grace period) and waits for them
    /// to end.
    package func shutdown() async {
        for task in supervisors.withLock({ $0 }) {
            task.cancel()
            await task.value
        }
        try? await client.http.shutdown()
    }

    /// Requests waiting for a worker now.
    package var queued: Int { pool.withLock { $0.waiting.count } }

    /// Requests sent to a worker and not answered yet (a batching worker holds several).
    package var running: Int { onWorkers.load(ordering: .relaxed) }

    /// The number of workers up now.
    package var workersUp: Int { pool.withLock { $0.workersUp } }

    /// The requests the workers up now take at once, together.
    package var places: Int { pool.withLock { $0.places } }

    /// The process ids of the spawned workers up now.
    package var workerProcesses: [Int32] { pool.withLock { $0.processIdentifiers } }

    package func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        let queuedAt = ContinuousClock.now
        let lease = try await acquire(for: request.requester ?? "", stop: request.stop)
        gauges.queueWait.recordNanoseconds((ContinuousClock.now - queuedAt).wholeNanoseconds)
        onWorkers.add(1, ordering: .relaxed)
        defer { onWorkers.subtract(1, ordering: .relaxed) }
        // Once started, a job runs to its end even if its client goes away: the worker is handed
        // out again only when it is free.
        if request.stop?.isRequested == true {
            release(lease)
            throw .failed("the generation was cancelled before it started: no step ran")
        }
        // The worker knows each generation by an id (a job's is its stop's), by which it is told to
        // stop between steps: when its job is cancelled, and when its deadline passes.
        let id = request.stop?.id ?? (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined(separator: "-")
        let cancel: @Sendable () -> Void = { [client, settings] in
            Task { await client.cancel(id, at: lease.url, token: lease.token, timeout: settings.healthCheckTimeout) }
        }
        let stopping = request.stop?.onRequest(cancel)
        defer { request.stop?.remove(stopping) }
        let outcome = await uncancelled { [client, settings] () async -> Result<GenerationResult, InferenceError> in
            do throws(InferenceError) {
                return .success(try await client.generate(request, id: id, at: lease.url, token: lease.token, deadline: settings.deadline))
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let result):
            release(lease)
            // Even if the client went away: the GPU time was spent, so the result is charged (and
            // kept for a retry with the same Idempotency-Key).
            return result
        case .failure(let error):
            if case .timedOut = error {
                // Answered 504 and not charged, so the worker must not spend its GPU on it any longer
                // (nor run it at all, if it still waits there for a batch of its kind). Until it is
                // free again its health check keeps it out of the pool.
                cancel()
                down(lease.worker)
            } else if case .failed = error, await client.health(lease.url, timeout: settings.healthCheckTimeout) == .unreachable {
                // A worker that stopped answering is not handed out again until its health is back.
                down(lease.worker)
            } else {
                release(lease)
            }
            throw error
        }
    }

    // MARK: The pool

    private func acquire(for key: String, stop: GenerationStop?) async throws(InferenceError) -> WorkerPool.Lease {
        let id: UInt64
        switch pool.withLock({ $0.admit(key) }) {
        case .started(let lease): return lease
        case .waits(let waiter): id = waiter
        }
        // Takes the request out of the queue, if it is still there, and fails it with `error`.
        let leave: @Sendable (any Error) -> Void = { [self] error in changePool { $0.waiting.remove(id: id) }?.resume(throwing: error) }
        // A job cancelled while it waits leaves the queue at once: it held its runner's slot until
        // a worker came free, or for `max_wait`.
        let cancelled = InferenceError.failed("the generation was cancelled before it started: no step ran")
        let stopping = stop?.onRequest { leave(cancelled) }
        defer { stop?.remove(stopping) }
        // Nobody waits for ever: past `maxWait` the request leaves the queue as `busy`.
        let timer = Task { [settings] in
            try? await Task.sleep(for: settings.maxWait)
            guard !Task.isCancelled else { return }
            leave(InferenceError.busy(retryAfter: .seconds(5)))
        }
        defer { timer.cancel() }
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    // Nil: stopped before it joined (under the lock its stop's handler takes too).
                    let joined = changePool { pool -> WorkerPool.Joined? in
                        if stop?.isRequested == true { return nil }
                        return Task.isCancelled ? .refused : pool.join(continuation, id: id, key: key)
                    }
                    switch joined {
                    case nil:
                        continuation.resume(throwing: cancelled)
                    case .started(let lease)?:
                        continuation.resume(returning: lease)
                    case .queued(let count)?:
                        logger.debug("waiting for a worker", metadata: ["key.id": "\(key)", "queued": "\(count)"])
                    case .refused?:
                        continuation.resume(throwing: InferenceError.busy(retryAfter: .seconds(5)))
                    }
                }
            } onCancel: {
                leave(CancellationError())
            }
        } catch let error as InferenceError {
            throw error
        } catch {
            throw .failed("the request was cancelled before it started")
        }
    }

    /// Hands a worker back: to the next waiter in turn, or to the idle ones.
    private func release(_ lease: WorkerPool.Lease) {
        if let (waiter, lease) = changePool({ $0.handBack(lease) }) { waiter.resume(returning: lease) }
    }

    private func up(_ worker: Int, _ listening: ListeningWorker, capacity: Int) {
        let leases = changePool { $0.up(worker, listening, capacity: capacity) }
        var metadata: Logger.Metadata = ["worker": "\(worker)", "url": "\(listening.url)", "max_batch": "\(capacity)"]
        if let pid = listening.processIdentifier { metadata["pid"] = "\(pid)" }
        logger.info("worker up", metadata: metadata)
        for lease in leases { release(lease) }
        workerChanged(worker, true)
    }

    private func down(_ worker: Int) {
        changePool { $0.down(worker) }
        // Stopping the gateway stops its workers (their supervisors cancelled): no worker failed.
        if !Task.isCancelled { workerChanged(worker, false) }
    }

    /// Changes the pool under its lock, and the gauges with it.
    @discardableResult
    private func changePool<T: Sendable>(_ change: (inout WorkerPool) -> T) -> T {
        pool.withLock { pool in
            defer { gauges.show(pool) }
            return change(&pool)
        }
    }

    // MARK: Supervision

    private func supervise(_ worker: Int, _ command: WorkerCommand) async {
        var delay: Duration = .seconds(1)
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let status: Int32
            do {
                status = try await SpawnedWorker.run(command, stopGracePeriod: settings.stopGracePeriod, startTimeout: settings.startTimeout) {
                    listening in
                    await self.watch(worker, listening)
                    if !Task.isCancelled {
                        self.logger.error(
                            "worker unhealthy or stuck; killing it", metadata: ["worker": "\(worker)", "pid": "\(listening.processIdentifier ?? 0)"])
                    }
                }
            } catch {
                logger.error("worker could not be started", metadata: ["worker": "\(worker)", "error": "\(error)"])
                status = -1
            }
            down(worker)
            if Task.isCancelled { return }
            // A worker that ran a while before dying is restarted at once; one that dies at start
            // is retried less and less often.
            delay = ContinuousClock.now - started > .seconds(60) ? .seconds(1) : min(delay * 2, settings.maxRestartDelay)
            logger.warning("worker stopped; restarting", metadata: ["worker": "\(worker)", "status": "\(status)", "in": "\(delay)"])
            try? await Task.sleep(for: delay)
        }
    }

    /// Checks a worker's health until it fails `failedChecksBeforeRestart` checks in a row, or stays
    /// busy for a whole `deadline` with a job that already timed out (then returns, with the worker
    /// out of the pool), or the task is cancelled. A worker that passes while out of the pool, and
    /// is not busy with a job it was left with, joins the pool.
    private func watch(_ worker: Int, _ listening: ListeningWorker) async {
        var failures = 0
        var busyWhileOut: ContinuousClock.Instant?
        while !Task.isCancelled {
            switch await client.health(listening.url, timeout: settings.healthCheckTimeout) {
            case .ready(let capacity):
                failures = 0
                busyWhileOut = nil
                // Up, or with another --max-batch than it had (a remote worker started again
                // between two looks): its places are counted anew, the old ones void.
                if pool.withLock({ $0.capacity(of: worker) }) != capacity { up(worker, listening, capacity: capacity) }
            case .busy:
                failures = 0
                // Out of the pool and busy: still on a job whose client was answered 504. A job
                // that outlives a second deadline is stuck, and only a new process frees the GPU.
                if pool.withLock({ $0.isUp(worker) }) {
                    busyWhileOut = nil
                } else {
                    let since = busyWhileOut ?? .now
                    busyWhileOut = since
                    if ContinuousClock.now - since >= settings.deadline { return }
                }
            case .unreachable:
                failures += 1
                if failures >= settings.failedChecksBeforeRestart {
                    down(worker)
                    return
                }
            }
            try? await Task.sleep(for: settings.healthCheckInterval)
        }
    }
}
