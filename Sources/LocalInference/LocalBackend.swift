public import GenerationCore
import AsyncHTTPClient
public import CoreMetrics
public import Logging
import Synchronization

/// Generation on the team's own GPUs: a pool of worker processes, one request at a time each.
///
/// Workers are spawned and kept alive here (restarted with backoff when they die), or reached at
/// the URLs of workers running on other hosts. Requests wait for a free worker in a bounded queue,
/// served round-robin across keys; a full queue answers `busy`, and a request whose client goes
/// away (its task is cancelled) leaves the queue before it starts.
///
/// Metrics: `sdgate_worker_queue_depth` (requests waiting now), `sdgate_workers_up`, and
/// `sdgate_worker_queue_wait_seconds` (how long each request waited for its worker).
public final class LocalBackend: InferenceBackend {
    public struct Settings: Sendable {
        /// Requests that may wait for a worker, in all and per key; beyond them, `busy`.
        public var queueLimit = 64
        public var queueLimitPerKey = 8
        /// Longest time one generation may take on a worker.
        public var deadline: Duration = .seconds(300)
        /// The longest pause between restarts of a worker that keeps dying.
        public var maxRestartDelay: Duration = .seconds(30)

        public init() {}
    }

    /// A worker as the pool hands it out: which one, which of its lives, where it listens.
    struct Lease: Sendable, Equatable {
        let worker: Int
        let life: Int
        let url: String
    }

    private struct Pool {
        var idle: [Lease] = []
        /// Each worker's current life and its URL while it is up.
        var lives: [Int: (life: Int, url: String?)] = [:]
        var waiting: FairQueue<CheckedContinuation<Lease, any Error>>
        var nextWaiter: UInt64 = 0
        /// When each key last had a request started, as a count of starts: the fair queue serves
        /// the key served least recently first.
        var lastServed: [String: UInt64] = [:]
        var starts: UInt64 = 0

        mutating func start(_ lease: Lease, for key: String) -> Lease {
            starts += 1
            lastServed[key] = starts
            return lease
        }

        var workersUp: Int { lives.values.filter { $0.url != nil }.count }
    }

    /// The pool's gauges, set under the pool's lock whenever what they show changes.
    private struct Gauges: Sendable {
        let queueDepth: Gauge
        let workersUp: Gauge
        let queueWait: Timer

        func show(_ pool: borrowing Pool) {
            queueDepth.record(pool.waiting.count)
            workersUp.record(pool.workersUp)
        }
    }

    private let settings: Settings
    private let client: WorkerClient
    private let logger: Logger
    private let pool: Mutex<Pool>
    private let gauges: Gauges
    private let supervisors = Mutex<[Task<Void, Never>]>([])

    public init(settings: Settings, logger: Logger, metrics: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.settings = settings
        self.logger = logger
        gauges = Gauges(queueDepth: Gauge(label: "sdgate_worker_queue_depth", factory: metrics),
                        workersUp: Gauge(label: "sdgate_workers_up", factory: metrics),
                        queueWait: Timer(label: "sdgate_worker_queue_wait_seconds", factory: metrics))
        client = WorkerClient(http: HTTPClient(eventLoopGroupProvider: .singleton))
        pool = Mutex(Pool(waiting: FairQueue(capacity: settings.queueLimit, capacityPerKey: settings.queueLimitPerKey)))
    }

    /// Spawns a worker and keeps it running until `shutdown`.
    public func spawn(_ command: WorkerCommand) {
        let worker = addWorker()
        let task = Task { await self.supervise(worker, command) }
        supervisors.withLock { $0.append(task) }
    }

    /// Adds a worker running elsewhere, at `url` (`http://host:port`).
    public func connect(to url: String) {
        let worker = addWorker()
        let task = Task {
            // A remote worker is not ours to restart: it is used while its health check passes.
            while !Task.isCancelled {
                let healthy = await client.isHealthy(url)
                let isUp = pool.withLock { $0.lives[worker]?.url != nil }
                if healthy, !isUp { up(worker, url: url) } else if !healthy, isUp { down(worker) }
                try? await Task.sleep(for: .seconds(5))
            }
        }
        supervisors.withLock { $0.append(task) }
    }

    private func addWorker() -> Int {
        pool.withLock { pool in
            let index = pool.lives.count
            pool.lives[index] = (0, nil)
            return index
        }
    }

    /// Stops the spawned workers (SIGTERM) and waits for them to end.
    public func shutdown() async {
        for task in supervisors.withLock({ $0 }) {
            task.cancel()
            await task.value
        }
        try? await client.http.shutdown()
    }

    /// Requests waiting for a worker now.
    public var queued: Int { pool.withLock { $0.waiting.count } }

    /// The number of workers up now.
    public var workersUp: Int { pool.withLock { $0.workersUp } }

    public func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        let queuedAt = ContinuousClock.now
        let lease = try await acquire(for: request.requester ?? "")
        gauges.queueWait.recordNanoseconds((ContinuousClock.now - queuedAt).wholeNanoseconds)
        do {
            let result = try await client.generate(request, at: lease.url, deadline: settings.deadline)
            release(lease)
            return result
        } catch {
            // A worker that stopped answering is not handed out again until its health is back.
            if case .failed = error, await !client.isHealthy(lease.url) {
                down(lease.worker)
            } else {
                release(lease)
            }
            throw error
        }
    }

    // MARK: The pool

    private func acquire(for key: String) async throws(InferenceError) -> Lease {
        enum Decision { case ready(Lease), wait(UInt64) }
        let decision = pool.withLock { pool -> Decision in
            if pool.waiting.isEmpty, let lease = pool.idle.popLast() { return .ready(pool.start(lease, for: key)) }
            pool.nextWaiter += 1
            return .wait(pool.nextWaiter)
        }
        switch decision {
        case .ready(let lease): return lease
        case .wait(let id):
            do {
                return try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { continuation in
                        let queued = pool.withLock { pool in
                            defer { gauges.show(pool) }
                            return Task.isCancelled ? false : pool.waiting.enqueue(continuation, id: id, key: key)
                        }
                        if !queued { continuation.resume(throwing: InferenceError.busy(retryAfter: .seconds(5))) }
                    }
                } onCancel: {
                    pool.withLock { pool in
                        defer { gauges.show(pool) }
                        return pool.waiting.remove(id: id)
                    }?.resume(throwing: CancellationError())
                }
            } catch let error as InferenceError {
                throw error
            } catch {
                throw .failed("the request was cancelled before it started")
            }
        }
    }

    /// Hands a worker back: to the next waiter in turn, or to the idle ones.
    private func release(_ lease: Lease) {
        let handOver = pool.withLock { pool -> (CheckedContinuation<Lease, any Error>, Lease)? in
            // A worker that died and came back has a new life: the old lease is void.
            guard pool.lives[lease.worker]?.life == lease.life, pool.lives[lease.worker]?.url != nil else { return nil }
            if let (key, waiter) = pool.waiting.dequeue(lastServed: pool.lastServed) {
                gauges.show(pool)
                return (waiter, pool.start(lease, for: key))
            }
            pool.idle.append(lease)
            return nil
        }
        if let (waiter, lease) = handOver { waiter.resume(returning: lease) }
    }

    private func up(_ worker: Int, url: String) {
        let lease = pool.withLock { pool -> Lease in
            let life = (pool.lives[worker]?.life ?? 0) + 1
            pool.lives[worker] = (life, url)
            gauges.show(pool)
            return Lease(worker: worker, life: life, url: url)
        }
        logger.info("worker up", metadata: ["worker": "\(worker)", "url": "\(url)"])
        release(lease)
    }

    private func down(_ worker: Int) {
        pool.withLock { pool in
            pool.lives[worker]?.url = nil
            pool.idle.removeAll { $0.worker == worker }
            gauges.show(pool)
        }
    }

    // MARK: Supervision

    private func supervise(_ worker: Int, _ command: WorkerCommand) async {
        var delay: Duration = .seconds(1)
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let status: Int32
            do {
                status = try await SpawnedWorker.run(command) { url in
                    Task { if await self.client.isHealthy(url) { self.up(worker, url: url) } }
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
}
