import GenerationCore

/// The job queue in memory, with the SQL stores' order: keys take turns, each key's jobs oldest first.
extension InMemoryLedger: JobStore {
    /// A job as `InMemoryLedger` keeps it: the record, and what only the queue needs.
    struct StoredJob: Sendable {
        var record: JobRecord
        var leaseUntil: Timestamp?
        /// Which claim took it last (`SQLiteLedger.nextInTurn`), counted across every job.
        var claimTurn: Int64?
        /// Enqueued in this order, for jobs made in the same millisecond.
        let sequence: Int
        /// When the job was settled (`settleJob`), once it ended.
        var settledAt: Timestamp? = nil
        /// Its input image, which only a claim reads, until it ends (`JobRecord.input`).
        var input: [UInt8]? = nil
    }

    public func enqueueJob(_ job: NewJob) async throws(LedgerError) -> JobRecord {
        let id = RandomUUID.make(), createdAt = now(), limit = job.maxQueuedForKey ?? Int.max, draw = JobPublicID.source
        return try locked { (state: inout InMemoryState) throws(LedgerError) -> JobRecord in
            let queued = state.jobs.values.count { $0.record.keyID == job.keyID && $0.record.state == .queued }
            guard queued < limit else { throw .tooManyQueuedJobs(limit: limit) }
            // A number another job has already is drawn again, as the SQL stores' unique index makes them.
            guard let publicID = (0..<JobPublicID.draws).lazy.map({ _ in draw() }).first(where: { state.jobIDsByPublicID[$0] == nil })
            else { throw .storage("no unused public id for a job in \(JobPublicID.draws) draws") }
            let record = JobRecord(
                id: id, publicID: publicID, keyID: job.keyID, dialect: job.dialect, model: job.model, payload: job.payload,
                hold: job.hold, cost: job.cost, state: .queued, attempts: 0, result: nil, error: nil, createdAt: createdAt,
                finishedAt: nil)
            state.sequence += 1
            state.jobs[id] = StoredJob(record: record, sequence: state.sequence, input: job.input)
            state.jobIDsByPublicID[publicID] = id
            return record
        }
    }

    public func job(id: String) async throws(LedgerError) -> JobRecord? {
        try locked { state in state.jobs[id]?.record }
    }

    public func job(publicID: Int64) async throws(LedgerError) -> JobRecord? {
        try locked { state in state.jobIDsByPublicID[publicID].flatMap { state.jobs[$0]?.record } }
    }

    public func queuedJobCount() async throws(LedgerError) -> Int {
        try locked { state in state.jobs.values.count { $0.record.state == .queued } }
    }

    public func claimJob(leaseUntil: Timestamp) async throws(LedgerError) -> JobRecord? {
        try locked { state in
            var lastTurn: [String: Int64] = [:]
            for job in state.jobs.values {
                if let turn = job.claimTurn { lastTurn[job.record.keyID] = max(lastTurn[job.record.keyID] ?? turn, turn) }
            }
            // The key whose last turn is the oldest (none: first), then its oldest job.
            let next = state.jobs.values.filter { $0.record.state == .queued }.min { a, b in
                (lastTurn[a.record.keyID] ?? .min, a.record.createdAt, a.sequence) < (
                    lastTurn[b.record.keyID] ?? .min, b.record.createdAt, b.sequence
                )
            }
            guard let next else { return nil }
            let job = StoredJob(
                record: next.record.with(state: .processing, attempts: next.record.attempts + 1), leaseUntil: leaseUntil,
                claimTurn: (lastTurn.values.max() ?? 0) + 1, sequence: next.sequence, input: next.input)
            state.jobs[job.record.id] = job
            var claimed = job.record
            claimed.input = job.input
            return claimed
        }
    }

    public func renewJobLease(id: String, attempt: Int, until: Timestamp) async throws(LedgerError) -> Bool {
        try locked { state in
            guard let job = state.jobs[id], job.record.state == .processing, job.record.attempts == attempt else { return false }
            state.jobs[id]?.leaseUntil = until
            return true
        }
    }

    public func finishJob(id: String, attempt: Int, state finished: JobState, result: [UInt8]?, error: String?) async throws(LedgerError) -> Bool {
        let finishedAt = now()
        return try locked { state in
            guard let job = state.jobs[id], job.record.state == .processing, job.record.attempts == attempt else { return false }
            state.jobs[id]?.record = job.record.with(state: finished, result: result, error: error, finishedAt: finishedAt)
            state.jobs[id]?.leaseUntil = nil
            state.jobs[id]?.input = nil
            return true
        }
    }

    public func recoverAbandonedJobs(now: Timestamp, maxAttempts: Int) async throws(LedgerError) -> [JobRecord] {
        try locked { state in
            var failed: [JobRecord] = []
            for job in state.jobs.values.sorted(by: { $0.sequence < $1.sequence }) {
                guard job.record.state == .processing, let lease = job.leaseUntil, lease < now else { continue }
                // A cancelled job is not run again: it fails as cancelled.
                let record =
                    job.record.cancelledAt != nil
                    ? job.record.with(state: .failed, error: JobRecord.cancelledError, finishedAt: now)
                    : job.record.attempts < maxAttempts
                        ? job.record.with(state: .queued)
                        : job.record.with(state: .failed, error: "the gateway stopped while generating, too many times", finishedAt: now)
                state.jobs[record.id]?.record = record
                state.jobs[record.id]?.leaseUntil = nil
                if record.state == .failed {
                    state.jobs[record.id]?.input = nil
                    failed.append(record)
                }
            }
            return failed
        }
    }

    public func expireQueuedJobs(queuedBefore cutoff: Timestamp) async throws(LedgerError) -> [JobRecord] {
        let finishedAt = now()
        return try locked { state in
            state.jobs.values.sorted { $0.sequence < $1.sequence }.compactMap { job in
                guard job.record.state == .queued, job.record.createdAt < cutoff else { return nil }
                let record = job.record.with(state: .failed, error: "the job waited too long in the queue", finishedAt: finishedAt)
                state.jobs[record.id]?.record = record
                state.jobs[record.id]?.input = nil
                return record
            }
        }
    }

    public func purgeJobs(finishedBefore cutoff: Timestamp) async throws(LedgerError) -> Int {
        try locked { state in
            let old = state.jobs.values.filter { ($0.record.finishedAt ?? .max) < cutoff && $0.settledAt != nil }
            for job in old {
                state.jobs[job.record.id] = nil
                state.jobIDsByPublicID[job.record.publicID] = nil
            }
            return old.count
        }
    }
}

extension JobRecord {
    func with(
        state: JobState, attempts: Int? = nil, result: [UInt8]? = nil, error: String? = nil, finishedAt: Timestamp? = nil,
        cancelledAt: Timestamp? = nil
    ) -> JobRecord {
        JobRecord(
            id: id, publicID: publicID, keyID: keyID, dialect: dialect, model: model, payload: payload, hold: hold, cost: cost, state: state,
            attempts: attempts ?? self.attempts, result: result ?? self.result, error: error ?? self.error, createdAt: createdAt,
            finishedAt: finishedAt ?? self.finishedAt, cancelledAt: cancelledAt ?? self.cancelledAt)
    }
}

extension InMemoryLedger {
    public func cancelJob(id: String) async throws(LedgerError) -> JobCancellation {
        let at = now()
        return try locked { state in
            guard let job = state.jobs[id]?.record else { return .notFound }
            switch job.state {
            case .queued:
                let record = job.with(state: .failed, error: JobRecord.cancelledError, finishedAt: at, cancelledAt: at)
                state.jobs[id]?.record = record
                state.jobs[id]?.input = nil
                return .removed(record)
            case .processing where job.cancelledAt == nil:
                let record = job.with(state: .processing, cancelledAt: at)
                state.jobs[id]?.record = record
                return .stopping(record)
            default:
                return .unchanged(job)
            }
        }
    }

    public func queuedJobs() async throws(LedgerError) -> [QueuedJob] {
        try locked { state in
            var lastTurn: [String: Int64] = [:]
            for job in state.jobs.values {
                if let turn = job.claimTurn { lastTurn[job.record.keyID] = max(lastTurn[job.record.keyID] ?? turn, turn) }
            }
            return state.jobs.values.filter { $0.record.state == .queued }
                .sorted { ($0.record.createdAt, $0.sequence) < ($1.record.createdAt, $1.sequence) }
                .map { QueuedJob(id: $0.record.id, keyID: $0.record.keyID, model: $0.record.model, keyLastTurn: lastTurn[$0.record.keyID]) }
        }
    }
}
