public import GenerationCore
import Ledger

/// A generation job as the dialects render it: its phase, what it asked for, and, once it ended,
/// what it made or why it failed.
public struct GenerationJob: Sendable {
    public enum Phase: Sendable, Equatable {
        /// `cancelled`: its key cancelled it and it ended; nothing of it is delivered.
        case queued, processing, completed, failed, cancelled
    }

    public let id: String
    /// Its number for the dialects whose ids are integers (`JobRecord.publicID`).
    public let publicID: Int64
    public let phase: Phase
    public let payload: GenerationJobPayload
    public let result: GenerationJobResult?
    /// Why it failed, in words a client may read.
    public let error: String?
    /// Its key asked to cancel it while it ran: it ends undelivered.
    public let cancelRequested: Bool
    /// Where it stands while it waits or runs (`JobQueue` fills it in); nil once it ended.
    public internal(set) var standing: JobStanding?

    /// Why a cancelled job ended as it did, for its client: the worker's words when it stopped
    /// one between steps.
    public static func cancelledMessage(_ job: GenerationJob) -> String {
        guard let error = job.error, error.contains("cancelled") else { return JobRecord.cancelledError }
        return error
    }

    /// The files that exist once the job completed: those of the images delivered. Before, the
    /// names the images will have; a cancelled job has none.
    public var files: [String] {
        switch phase {
        case .completed: result?.delivered(of: payload) ?? payload.files
        case .cancelled: []
        default: payload.files
        }
    }

    init?(_ record: JobRecord) {
        let phase: Phase =
            switch record.state {
            case .queued: .queued
            case .processing: .processing
            case .completed, .failed: record.cancelledAt == nil ? (record.state == .completed ? .completed : .failed) : .cancelled
            }
        self.init(record, phase: phase, result: record.result, error: record.error)
    }

    /// The job as it ends with `outcome`, before its end is read back.
    init?(_ record: JobRecord, ending outcome: JobRunner.Outcome) {
        let cancelled = record.cancelledAt != nil
        switch outcome {
        case .completed(let result): self.init(record, phase: cancelled ? .cancelled : .completed, result: result, error: nil)
        case .failed(let message): self.init(record, phase: cancelled ? .cancelled : .failed, result: nil, error: message)
        }
    }

    private init?(_ record: JobRecord, phase: Phase, result: [UInt8]?, error: String?) {
        guard let payload = GenerationJobPayload.decode(record.payload) else { return nil }
        self.init(record, payload: payload, phase: phase, result: result, error: error)
    }

    /// A job just queued with `payload`, which it is not read back for (it holds the input image).
    init(queued record: JobRecord, payload: GenerationJobPayload) {
        self.init(record, payload: payload, phase: .queued, result: nil, error: nil)
    }

    private init(_ record: JobRecord, payload: GenerationJobPayload, phase: Phase, result: [UInt8]?, error: String?) {
        self.id = record.id
        self.publicID = record.publicID
        self.phase = phase
        self.payload = payload
        self.result = GenerationJobResult.decode(result)
        self.error = error
        self.cancelRequested = record.cancelledAt != nil
    }
}

/// What the dialects see of background generation: queue a request whose price is held, read a
/// job back for the key that queued it, and wait for one to end.
public protocol GenerationJobs: Sendable {
    /// The longest a job waits in the queue before it fails; its credits are held that much longer
    /// than a request's that runs at once.
    var maxQueueTime: Duration { get }
    /// The base of the absolute URLs in an answer to a request with this `Host` header.
    func baseURL(host: String?) -> String
    /// Queues a generation; the job as queued, or why it was not (the caller still holds its credits).
    func enqueue(_ payload: GenerationJobPayload, keyID: String, dialect: String, hold: CreditHold, cost: Credits) async
        -> Result<GenerationJob, JobRefusal>
    /// The job `id` if `keyID` queued it through `dialect`; another key's job and a made-up id look
    /// the same, so ids cannot be probed. `id` is the job's UUID or its public id in decimal.
    func job(_ id: String, of keyID: String, dialect: String) async -> GenerationJob?
    /// The job once it ended, or as it stands after `timeout`; nil if it cannot be read.
    func waitForEnd(of id: String, upTo timeout: Duration) async -> GenerationJob?
    /// Cancels the job `id` if `keyID` queued it through `dialect` (another key's job is `notFound`).
    func cancel(_ id: String, of keyID: String, dialect: String) async -> JobCancelOutcome
    /// How many jobs wait, and how long until the last of them would have run.
    func load() async -> QueueLoad
}

/// What a key's cancel came to, with the job as it stands after it.
public enum JobCancelOutcome: Sendable {
    /// It was queued: removed, its hold voided, nothing charged.
    case cancelled(GenerationJob)
    /// It runs: a local worker stops it at its next step; an upstream call runs to its end. It is
    /// not delivered either way.
    case stopping(GenerationJob)
    /// It had ended (or was cancelled before): nothing changed.
    case ended(GenerationJob)
    case notFound
    /// The store could not be reached: nothing is known to have changed.
    case unavailable
}

/// Where a job stands: its place in the queue (1: next to be claimed; 0: running) and the seconds
/// until it is expected to end, from the measured generation times (`JobTimings`).
public struct JobStanding: Sendable, Equatable {
    public let position: Int
    public let etaSeconds: Double
}

/// The queue as a whole: the jobs waiting, and the seconds until the last of them would have run.
public struct QueueLoad: Sendable, Equatable {
    public let queued: Int
    public let seconds: Double
}

public enum JobRefusal: Error, Sendable, Equatable {
    /// The key has `limit` jobs waiting already.
    case tooMany(limit: Int)
    case failed
}
