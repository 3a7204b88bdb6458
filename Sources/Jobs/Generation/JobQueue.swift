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

    public init(
        store: any JobStore, completions: JobCompletions, wake: @escaping @Sendable () -> Void, publicBaseURL: String? = nil,
        hostScheme: String = "http", maxQueueTime: Duration = .seconds(3600), maxQueuedPerKey: Int = 16
    ) {
        self.store = store
        self.maxQueuedPerKey = maxQueuedPerKey
        self.maxQueueTime = maxQueueTime
        self.completions = completions
        self.wake = wake
        self.publicBaseURL = publicBaseURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.hostScheme = hostScheme
    }

    public func baseURL(host: String?) -> String {
        publicBaseURL ?? hostScheme + "://" + (host ?? "localhost")
    }

    public func enqueue(_ payload: GenerationJobPayload, keyID: String, dialect: String, hold: CreditHold, cost: Credits) async
        -> Result<String, JobRefusal>
    {
        do {
            let job = try await store.enqueueJob(
                NewJob(
                    keyID: keyID, dialect: dialect, model: payload.request.model, payload: payload.encoded(),
                    hold: HoldID(hold.id), cost: cost, maxQueuedForKey: maxQueuedPerKey))
            wake()
            return .success(job.id)
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
        return GenerationJob(record)
    }

    /// A job that ends on this replica wakes the wait; one that ends elsewhere is seen by looking
    /// again every second.
    public func waitForEnd(of id: String, upTo timeout: Duration) async -> GenerationJob? {
        let deadline = ContinuousClock.now + timeout
        while true {
            guard let record = try? await store.job(id: id), let job = GenerationJob(record) else { return nil }
            let left = deadline - .now
            if job.phase == .completed || job.phase == .failed || left <= .zero || Task.isCancelled { return job }
            await completions.wait(for: id, upTo: min(left, .seconds(1)))
        }
    }
}
