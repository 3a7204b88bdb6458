public import GenerationCore

/// Durable background jobs (Segmind v2 requests, ModelsLab v3 `processing`), kept in the ledger's
/// database so that they survive a restart and several replicas share them.
///
/// A job is QUEUED, then PROCESSING under a lease that its runner renews, then COMPLETED or FAILED.
/// A job whose lease runs out (its gateway died) is queued again, or failed once it has been tried
/// `maxAttempts` times. A job that ended is then settled (`settleJob`): its end and its settle are
/// two steps, and a job left unsettled between them is found again (`unsettledJobIDs`). The store
/// keeps the dialect's request and answer as opaque bytes.
public protocol JobStore: Sendable {
    /// Queues a job, with a new UUID and public id; `tooManyQueuedJobs` if its key has
    /// `maxQueuedForKey` jobs queued already.
    func enqueueJob(_ job: NewJob) async throws(LedgerError) -> JobRecord
    func job(id: String) async throws(LedgerError) -> JobRecord?
    /// The job whose `publicID` this is, whichever key queued it: the caller checks the key.
    func job(publicID: Int64) async throws(LedgerError) -> JobRecord?
    /// How many jobs wait to be claimed, on every replica.
    func queuedJobCount() async throws(LedgerError) -> Int
    /// Takes the next queued job, atomically across replicas: QUEUED → PROCESSING, one more attempt.
    /// Keys take turns (round robin by the key's last claim), each key's jobs oldest first, so that
    /// one key's backlog does not hold the others' jobs back. The one read that carries its `input`.
    func claimJob(leaseUntil: Timestamp) async throws(LedgerError) -> JobRecord?
    /// Keeps a running job's lease; false if the job is no longer this runner's: taken back, or
    /// claimed again since (`attempt` is the claimed record's `attempts`, which each claim counts).
    func renewJobLease(id: String, attempt: Int, until: Timestamp) async throws(LedgerError) -> Bool
    /// Ends a running job; false if this claim of it (`attempt`) is no longer the one running:
    /// taken back after its lease ran out, perhaps claimed again by another runner, which ends it.
    func finishJob(id: String, attempt: Int, state: JobState, result: [UInt8]?, error: String?) async throws(LedgerError) -> Bool
    /// Queues again the running jobs whose lease ran out before `now`, or fails those already tried
    /// `maxAttempts` times; returns the failed ones, whose holds the caller voids.
    func recoverAbandonedJobs(now: Timestamp, maxAttempts: Int) async throws(LedgerError) -> [JobRecord]
    /// Fails the jobs still queued since before `cutoff`; returns them, whose holds the caller voids.
    func expireQueuedJobs(queuedBefore cutoff: Timestamp) async throws(LedgerError) -> [JobRecord]
    /// Forgets finished jobs older than `cutoff` that are settled (an unsettled one is kept until
    /// its settle is made); returns how many. Only a count: a round may purge thousands, and a job
    /// queued before its input was kept apart (`JobRecord.input`) holds the image in its payload.
    /// (Their images go by the output store's own retention.)
    func purgeJobs(finishedBefore cutoff: Timestamp) async throws(LedgerError) -> Int
    /// Cancels a job at its key's request, in one atomic step against a runner's claim: a queued
    /// job fails at once (the caller voids its hold); a running one is marked, and its runner stops
    /// it or lets it end undelivered. A job cancelled again, or already ended, is left as it is.
    func cancelJob(id: String) async throws(LedgerError) -> JobCancellation
    /// The jobs waiting to be claimed, oldest first, each with its key's last claim turn: enough
    /// to work out the order in which they will be claimed (`JobClaimOrder`).
    func queuedJobs() async throws(LedgerError) -> [QueuedJob]
    /// Settles a job that ended, once across runners and replicas, in one atomic step: charges its
    /// hold (`settlement.charge`; late, as `CreditStore.post` does, if the hold expired meanwhile)
    /// or releases it (nil: a hold no longer open has nothing left to release), records its usage
    /// event, queues its webhook, and marks the job settled. False, with nothing done, if the job
    /// was settled already, has not ended, or is not known. A hold that is unknown, or that was
    /// posted or voided already, moves nothing; the rest is done all the same.
    func settleJob(_ settlement: JobSettlement) async throws(LedgerError) -> Bool
    /// The ids of up to `limit` jobs that ended but are not settled, the earliest ended first: their
    /// gateway died between the two steps, or the settle failed. Only ids, to be read one at a
    /// time: a job queued before its input was kept apart holds the image in its payload.
    func unsettledJobIDs(limit: Int) async throws(LedgerError) -> [String]
}

/// What settling a job that ended does (`JobStore.settleJob`).
public struct JobSettlement: Sendable {
    public var jobID: String
    public var hold: HoldID
    /// What the hold is charged (at most its amount); nil: it is released.
    public var charge: Credits?
    /// Why the hold is released; a charge's reason is the ledger's own.
    public var releaseReason: String
    public var usage: UsageEvent
    public var webhook: NewWebhook?

    public init(jobID: String, hold: HoldID, charge: Credits?, releaseReason: String, usage: UsageEvent, webhook: NewWebhook?) {
        self.jobID = jobID
        self.hold = hold
        self.charge = charge
        self.releaseReason = releaseReason
        self.usage = usage
        self.webhook = webhook
    }
}

/// What a cancel did to a job.
public enum JobCancellation: Sendable, Equatable {
    /// It was queued: it failed as cancelled, and its hold is the caller's to void.
    case removed(JobRecord)
    /// It is running: marked cancelled, for its runner to stop.
    case stopping(JobRecord)
    /// It had ended, or was cancelled before: nothing changed.
    case unchanged(JobRecord)
    case notFound
}

/// A job in the queue, as the claim order sees it.
public struct QueuedJob: Sendable, Equatable {
    public let id: String
    public let keyID: String
    public let model: String
    /// The turn of its key's last claim; nil: the key never had one (it goes first).
    public let keyLastTurn: Int64?

    public init(id: String, keyID: String, model: String, keyLastTurn: Int64?) {
        self.id = id
        self.keyID = keyID
        self.model = model
        self.keyLastTurn = keyLastTurn
    }
}

public enum JobState: String, Sendable, Equatable {
    case queued = "QUEUED"
    case processing = "PROCESSING"
    case completed = "COMPLETED"
    case failed = "FAILED"
}

public struct NewJob: Sendable {
    public var keyID: String
    /// Which dialect answers for the job, e.g. `segmind` or `modelslab`.
    public var dialect: String
    public var model: String
    /// The request as the dialect will run it.
    public var payload: [UInt8]
    /// Its input image, kept apart from the payload (`JobRecord.input`).
    public var input: [UInt8]?
    /// The credits held for it, charged when it completes.
    public var hold: HoldID
    public var cost: Credits
    /// The most jobs the key may have queued at once, this one included; nil for no limit.
    public var maxQueuedForKey: Int?

    public init(
        keyID: String, dialect: String, model: String, payload: [UInt8], input: [UInt8]? = nil, hold: HoldID, cost: Credits,
        maxQueuedForKey: Int? = nil
    ) {
        self.input = input
        self.maxQueuedForKey = maxQueuedForKey
        self.keyID = keyID
        self.dialect = dialect
        self.model = model
        self.payload = payload
        self.hold = hold
        self.cost = cost
    }
}

public struct JobRecord: Sendable, Equatable {
    /// Random and unguessable: only its key reads a job, and the id is all it is asked by.
    public let id: String
    /// The job's number for APIs whose ids are integers, unique among jobs (`JobPublicID`). Random
    /// too, but unlike the UUID it can be guessed: a lookup by it checks the key all the same.
    public let publicID: Int64
    public let keyID: String
    public let dialect: String
    public let model: String
    public let payload: [UInt8]
    public let hold: HoldID
    public let cost: Credits
    public let state: JobState
    public let attempts: Int
    /// The dialect's answer, once completed.
    public let result: [UInt8]?
    /// Why it failed, in words a client may read.
    public let error: String?
    public let createdAt: Timestamp
    public let finishedAt: Timestamp?
    /// When its key asked to cancel it; nil: never. A cancelled job that ended is never delivered.
    public internal(set) var cancelledAt: Timestamp? = nil
    /// Its input image (megabytes), in the record a claim answers only, for the run: every other
    /// read leaves it out, so a poll costs the same whatever the image's size, and a job that
    /// ended no longer keeps it.
    public internal(set) var input: [UInt8]? = nil
}

extension JobRecord {
    /// The words a cancelled job's error carries.
    public static let cancelledError = "the request was cancelled"
}

extension JobRecord {
    /// The same job, cancelled at `cancelledAt` (nil: as it was).
    public func with(cancelledAt: Timestamp?) -> JobRecord {
        var record = self
        record.cancelledAt = cancelledAt ?? self.cancelledAt
        return record
    }
}
