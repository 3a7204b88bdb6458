public import GenerationCore
public import Ledger

/// The gateway's `GenerationJobs`: the durable job store, the waiters told when a job ends here,
/// the runner's wake-up, and the gateway's public address for the URLs the answers hold.
public struct JobQueue: GenerationJobs {
    public let store: any JobStore
    public let completions: JobCompletions
    /// Tells the job runner that a job was queued.
    public let wake: @Sendable () -> Void
    /// The gateway's address as clients reach it (`https://gateway.example`); nil: from each
    /// request's Host header, with `hostScheme` (`https` when the gateway serves TLS itself).
    public let publicBaseURL: String?
    public let hostScheme: String
    public let maxQueueTime: Duration
    /// The most jobs one key may have waiting at once: beyond it, a new one is refused, so that no
    /// key can fill the queue (jobs are claimed in turns across keys besides).
    public let maxQueuedPerKey: Int
    /// Cancels a job whose key asks (`JobRunner.cancel`: voids a queued one's hold, stops a running
    /// one); nil: the store alone cancels it (no runner settles or stops it).
    public let cancelJob: (@Sendable (String) async throws(LedgerError) -> JobCancellation)?
    /// The measured generation times, and how many jobs run at once here, for positions and ETAs.
    public let timings: JobTimings
    public let concurrency: Int

    public init(
        store: any JobStore, completions: JobCompletions, wake: @escaping @Sendable () -> Void, publicBaseURL: String? = nil,
        hostScheme: String = "http", maxQueueTime: Duration = .seconds(3600), maxQueuedPerKey: Int = 16,
        cancel: (@Sendable (String) async throws(LedgerError) -> JobCancellation)? = nil, timings: JobTimings = JobTimings(),
        concurrency: Int = 1
    ) {
        self.cancelJob = cancel
        self.timings = timings
        self.concurrency = max(1, concurrency)
        self.store = store
        self.maxQueuedPerKey = maxQueuedPerKey
        self.maxQueueTime = maxQueueTime
        self.completions = completions
        self.wake = wake
        self.publicBaseURL = publicBaseURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.hostScheme = hostScheme
    }

    public func baseURL(host: String?) -> String {
        // An empty Host (HTTP/1.1 allows one for a target without authority) names none: its links
        // were `http:///...`.
        publicBaseURL ?? hostScheme + "://" + (host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost")
    }

    public func enqueue(_ payload: GenerationJobPayload, keyID: String, dialect: String, hold: CreditHold, cost: Credits) async
        -> Result<GenerationJob, JobRefusal>
    {
        do {
            let stored = payload.encodedApart()
            let record = try await store.enqueueJob(
                NewJob(
                    keyID: keyID, dialect: dialect, model: payload.request.model, payload: stored.payload, input: stored.input,
                    hold: HoldID(hold.id), cost: cost, maxQueuedForKey: maxQueuedPerKey))
            wake()
            return .success(GenerationJob(queued: record, payload: payload))
        } catch .tooManyQueuedJobs(let limit) {
            return .failure(.tooMany(limit: limit))
        } catch {
            return .failure(.failed)
        }
    }

    public func job(_ id: String, of keyID: String, dialect: String) async -> GenerationJob? {
        // A UUID is never all digits, so the two kinds of id cannot be taken for one another.
        let record = if let publicID = JobPublicID.parse(id) { try? await store.job(publicID: publicID) } else { try? await store.job(id: id) }
        guard let record, record.keyID == keyID, record.dialect == dialect else { return nil }
        return await standing(GenerationJob(record), record)
    }

    public func cancel(_ id: String, of keyID: String, dialect: String) async -> JobCancelOutcome {
        guard let job = await job(id, of: keyID, dialect: dialect) else { return .notFound }
        let cancellation: JobCancellation
        do {
            if let cancelJob { cancellation = try await cancelJob(job.id) } else { cancellation = try await store.cancelJob(id: job.id) }
        } catch {
            return .unavailable
        }
        switch cancellation {
        case .removed(let record): return GenerationJob(record).map { JobCancelOutcome.cancelled($0) } ?? .unavailable
        case .stopping(let record): return await standing(GenerationJob(record), record).map { JobCancelOutcome.stopping($0) } ?? .unavailable
        case .unchanged(let record): return await standing(GenerationJob(record), record).map { JobCancelOutcome.ended($0) } ?? .unavailable
        case .notFound: return .notFound
        }
    }

    /// Waiting jobs are counted, and the time until the last one would have run is the time left
    /// of the jobs running here and the estimates of the waiting ones, shared by the runners.
    public func load() async -> QueueLoad {
        let queued = (try? await store.queuedJobs()) ?? []
        let work = timings.runningRemaining + queued.reduce(0) { $0 + timings.estimate(model: $1.model) }
        return QueueLoad(queued: queued.count, seconds: Self.rounded(work / Double(concurrency)))
    }

    /// The job with where it stands: a waiting job's place in the claim order and the time until
    /// it ends (the jobs running and those ahead, shared by the runners, then its own); a running
    /// job's time left.
    private func standing(_ job: GenerationJob?, _ record: JobRecord) async -> GenerationJob? {
        guard var job else { return nil }
        switch record.state {
        case .queued:
            let order = JobClaimOrder.order((try? await store.queuedJobs()) ?? [])
            guard let index = order.firstIndex(where: { $0.id == record.id }) else { break }
            let ahead = order[..<index].reduce(0) { $0 + timings.estimate(model: $1.model) }
            let wait = (timings.runningRemaining + ahead) / Double(concurrency)
            job.standing = JobStanding(position: index + 1, etaSeconds: Self.rounded(wait + timings.estimate(model: record.model)))
        case .processing:
            let left = timings.remaining(of: record.id) ?? timings.estimate(model: record.model)
            job.standing = JobStanding(position: 0, etaSeconds: Self.rounded(left))
        case .completed, .failed:
            break
        }
        return job
    }

    private static func rounded(_ seconds: Double) -> Double { (seconds * 100).rounded() / 100 }

    /// A job that ends on this replica wakes the wait; one that ends elsewhere is seen by looking
    /// again every second.
    public func waitForEnd(of id: String, upTo timeout: Duration) async -> GenerationJob? {
        let deadline = ContinuousClock.now + timeout
        while true {
            guard let record = try? await store.job(id: id), let job = GenerationJob(record) else { return nil }
            let left = deadline - .now
            if record.state == .completed || record.state == .failed { return job }
            if left <= .zero || Task.isCancelled { return await standing(job, record) }
            await completions.wait(for: id, upTo: min(left, .seconds(1)))
        }
    }
}
