import GenerationCore
public import HTTPServer
public import Jobs
public import Ledger

/// What the asynchronous APIs (Segmind v2, ModelsLab v3) share: the durable job store, the
/// waiters told when a job ends here, the runner's wake-up, and the gateway's public address for
/// the URLs their answers hold.
public struct JobQueue: Sendable {
    public let store: any JobStore
    public let completions: JobCompletions
    /// Tells the job runner that a job was queued.
    public let wake: @Sendable () -> Void
    /// The gateway's address as clients reach it (`https://gateway.example`); nil: from each
    /// request's Host header, with `hostScheme` (`https` when the gateway serves TLS itself).
    public let publicBaseURL: String?
    public let hostScheme: String
    /// The longest a job waits in the queue before it fails; its credits are held that much longer
    /// than a request's that runs at once.
    public let maxQueueTime: Duration
    /// The most jobs one key may have waiting at once: beyond it, a new one is refused, so that no
    /// key can fill the queue (jobs are claimed in turns across keys besides).
    public let maxQueuedPerKey: Int

    public init(store: any JobStore, completions: JobCompletions, wake: @escaping @Sendable () -> Void, publicBaseURL: String? = nil,
                hostScheme: String = "http", maxQueueTime: Duration = .seconds(3600), maxQueuedPerKey: Int = 16) {
        self.store = store
        self.maxQueuedPerKey = maxQueuedPerKey
        self.maxQueueTime = maxQueueTime
        self.completions = completions
        self.wake = wake
        self.publicBaseURL = publicBaseURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.hostScheme = hostScheme
    }

    /// The base of the absolute URLs in an answer to `request`.
    public func baseURL(for request: HTTPRequest) -> String {
        publicBaseURL ?? hostScheme + "://" + (request.headers["Host"] ?? "localhost")
    }

    /// Queues a generation whose price is held; releases the hold if it is not queued.
    func enqueue(_ payload: GenerationJobPayload, _ admitted: AdmittedRequest, dialect: String, gate: any AccessGate) async throws(GatewayError) -> JobRecord {
        let refusal: GatewayError
        do {
            let job = try await store.enqueueJob(NewJob(keyID: admitted.key.id, dialect: dialect, model: admitted.generation.model,
                                                        payload: payload.encoded(), hold: HoldID(admitted.hold.id), cost: admitted.cost,
                                                        maxQueuedForKey: maxQueuedPerKey))
            wake()
            return job
        } catch .tooManyQueuedJobs(let limit) {
            refusal = .tooManyJobs(limit: limit)
        } catch {
            refusal = .notQueued
        }
        _ = await gate.release(admitted.hold, reason: "the job was not queued")
        throw refusal
    }

    /// The job `id` if `key` submitted it through `dialect`; another key's job and a made-up id
    /// look the same, so ids cannot be probed.
    func job(_ id: String, of key: AuthenticatedKey, dialect: String) async throws(GatewayError) -> (JobRecord, GenerationJobPayload) {
        guard let job = try? await store.job(id: id), job.keyID == key.id, job.dialect == dialect,
              let payload = GenerationJobPayload.decode(job.payload) else { throw .jobNotFound }
        return (job, payload)
    }
}
