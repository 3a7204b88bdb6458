public import GenerationCore
import Ledger

/// A generation job as the dialects render it: its phase, what it asked for, and, once it ended,
/// what it made or why it failed.
public struct GenerationJob: Sendable {
    public enum Phase: Sendable, Equatable {
        case queued, processing, completed, failed
    }

    public let id: String
    /// Its number for the dialects whose ids are integers (`JobRecord.publicID`).
    public let publicID: Int64
    public let phase: Phase
    public let payload: GenerationJobPayload
    public let result: GenerationJobResult?
    /// Why it failed, in words a client may read.
    public let error: String?

    /// The files that exist once the job completed: those of the images delivered. Before, the
    /// names the images will have.
    public var files: [String] {
        phase == .completed ? result?.delivered(of: payload) ?? payload.files : payload.files
    }

    init?(_ record: JobRecord) {
        let phase: Phase =
            switch record.state {
            case .queued: .queued
            case .processing: .processing
            case .completed: .completed
            case .failed: .failed
            }
        self.init(record, phase: phase, result: record.result, error: record.error)
    }

    /// The job as it ends with `outcome`, before its end is read back.
    init?(_ record: JobRecord, ending outcome: JobRunner.Outcome) {
        switch outcome {
        case .completed(let result): self.init(record, phase: .completed, result: result, error: nil)
        case .failed(let message): self.init(record, phase: .failed, result: nil, error: message)
        }
    }

    private init?(_ record: JobRecord, phase: Phase, result: [UInt8]?, error: String?) {
        guard let payload = GenerationJobPayload.decode(record.payload) else { return nil }
        self.id = record.id
        self.publicID = record.publicID
        self.phase = phase
        self.payload = payload
        self.result = GenerationJobResult.decode(result)
        self.error = error
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
    /// Queues a generation; its id, or why it was not queued (the caller still holds its credits).
    func enqueue(_ payload: GenerationJobPayload, keyID: String, dialect: String, hold: CreditHold, cost: Credits) async
        -> Result<String, JobRefusal>
    /// The job `id` if `keyID` queued it through `dialect`; another key's job and a made-up id look
    /// the same, so ids cannot be probed. `id` is the job's UUID or its public id in decimal.
    func job(_ id: String, of keyID: String, dialect: String) async -> GenerationJob?
    /// The job once it ended, or as it stands after `timeout`; nil if it cannot be read.
    func waitForEnd(of id: String, upTo timeout: Duration) async -> GenerationJob?
}

public enum JobRefusal: Error, Sendable, Equatable {
    /// The key has `limit` jobs waiting already.
    case tooMany(limit: Int)
    case failed
}
