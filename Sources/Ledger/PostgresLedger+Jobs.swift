import Foundation
import GenerationCore
import PostgresNIO

/// The job queue in PostgreSQL. Replicas claim jobs with `FOR UPDATE SKIP LOCKED`: each queued job
/// goes to exactly one of them, and none waits for another's claim. Keys take turns, by the
/// sequence number of each key's last claim.
extension PostgresLedger: JobStore {
    static let jobsSchema: [PostgresQuery] = [
        """
        CREATE TABLE job (
            id TEXT PRIMARY KEY, key_id TEXT NOT NULL, dialect TEXT NOT NULL, model TEXT NOT NULL, payload BYTEA NOT NULL,
            hold_id TEXT NOT NULL, cost BIGINT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED')), attempts INTEGER NOT NULL DEFAULT 0,
            lease_until BIGINT, result BYTEA, error TEXT, created_at BIGINT NOT NULL, finished_at BIGINT)
        """,
        "CREATE INDEX job_queued ON job (created_at) WHERE state = 'QUEUED'",
        "CREATE INDEX job_leased ON job (lease_until) WHERE state = 'PROCESSING'",
        "CREATE INDEX job_finished ON job (finished_at) WHERE finished_at IS NOT NULL",
    ]

    /// A record's columns; its input, which only a claim reads (`claimedColumns`), as NULL.
    private static let columns =
        "id, public_id, key_id, dialect, model, payload, hold_id, cost, state, attempts, result, error, created_at, finished_at, cancelled_at, NULL::BYTEA"
    /// A record's columns with its input (`JobRecord.input`).
    private static let claimedColumns =
        "id, public_id, key_id, dialect, model, payload, hold_id, cost, state, attempts, result, error, created_at, finished_at, cancelled_at, input"

    /// Each claim's turn, so that the next claim goes to the key whose last turn is the oldest.
    static let jobTurnsSchema: [PostgresQuery] = [
        "ALTER TABLE job ADD COLUMN claim_turn BIGINT",
        "CREATE SEQUENCE job_claim_turn",
        "CREATE INDEX job_turns_by_key ON job (key_id, claim_turn)",
        "CREATE INDEX job_queued_by_key ON job (key_id) WHERE state = 'QUEUED'",
    ]

    /// Each job's public id (`JobPublicID`). The jobs there already are numbered in the order they
    /// were queued: distinct, and in range (new jobs' random numbers that meet them are drawn again,
    /// as any other duplicate).
    static let jobPublicIDsSchema: [PostgresQuery] = [
        "ALTER TABLE job ADD COLUMN public_id BIGINT",
        """
        UPDATE job SET public_id = numbered.n
        FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM job) numbered WHERE job.id = numbered.id
        """,
        """
        ALTER TABLE job ALTER COLUMN public_id SET NOT NULL,
            ADD CONSTRAINT job_public_id_range CHECK (public_id BETWEEN 1 AND \(unescaped: String(JobPublicID.range.upperBound)))
        """,
        "CREATE UNIQUE INDEX job_by_public_id ON job (public_id)",
    ]

    public func enqueueJob(_ job: NewJob) async throws(LedgerError) -> JobRecord {
        let id = RandomUUID.make(), createdAt = now(), payload = Data(job.payload), input = job.input.map { Data($0) }
        let limit = job.maxQueuedForKey ?? Int.max
        let draw = JobPublicID.source
        let record = try await transaction { connection, logger -> JobRecord? in
            // Enqueues of one key take turns (the lock ends with the transaction): its count cannot pass the limit.
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(job.keyID)))", logger: logger)
            for _ in 0..<JobPublicID.draws {
                // A public id that another job has inserts nothing (no error, which would end the
                // transaction), as the limit does; the count, which the lock keeps, tells which it was.
                for try await row in try await connection.query(
                    """
                    INSERT INTO job (id, public_id, key_id, dialect, model, payload, input, hold_id, cost, state, created_at)
                    SELECT \(id), \(draw()), \(job.keyID), \(job.dialect), \(job.model), \(payload), \(input), \(job.hold.rawValue),
                           \(job.cost.microCredits), 'QUEUED', \(createdAt)
                    WHERE (SELECT COUNT(*) FROM job WHERE key_id = \(job.keyID) AND state = 'QUEUED') < \(limit)
                    ON CONFLICT (public_id) DO NOTHING
                    RETURNING \(unescaped: Self.columns)
                    """, logger: logger
                ).decode(JobRow.self) {
                    return Self.record(row)
                }
                for try await count in try await connection.query(
                    "SELECT COUNT(*) FROM job WHERE key_id = \(job.keyID) AND state = 'QUEUED'", logger: logger
                ).decode(Int64.self) where count >= limit {
                    return nil
                }
            }
            throw LedgerError.storage("no unused public id for a job in \(JobPublicID.draws) draws")
        }
        guard let record else { throw .tooManyQueuedJobs(limit: limit) }
        return record
    }

    public func job(id: String) async throws(LedgerError) -> JobRecord? {
        try await jobs("SELECT \(unescaped: Self.columns) FROM job WHERE id = \(id)").first
    }

    public func job(publicID: Int64) async throws(LedgerError) -> JobRecord? {
        try await jobs("SELECT \(unescaped: Self.columns) FROM job WHERE public_id = \(publicID)").first
    }

    public func queuedJobCount() async throws(LedgerError) -> Int {
        try await perform { client, logger in
            for try await (count) in try await client.query("SELECT COUNT(*) FROM job WHERE state = 'QUEUED'", logger: logger).decode(Int64.self) {
                return Int(count)
            }
            return 0
        }
    }

    public func claimJob(leaseUntil: Timestamp) async throws(LedgerError) -> JobRecord? {
        try await jobs(
            """
            UPDATE job SET state = 'PROCESSING', attempts = attempts + 1, lease_until = \(leaseUntil), claim_turn = nextval('job_claim_turn')
            WHERE id = (
                SELECT q.id FROM job q WHERE q.state = 'QUEUED'
                ORDER BY (SELECT MAX(c.claim_turn) FROM job c WHERE c.key_id = q.key_id) NULLS FIRST, q.created_at
                LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING \(unescaped: Self.claimedColumns)
            """
        ).first
    }

    public func renewJobLease(id: String, attempt: Int, until: Timestamp) async throws(LedgerError) -> Bool {
        try await !jobs(
            """
            UPDATE job SET lease_until = \(until) WHERE id = \(id) AND state = 'PROCESSING' AND attempts = \(attempt)
            RETURNING \(unescaped: Self.columns)
            """
        ).isEmpty
    }

    public func finishJob(id: String, attempt: Int, state: JobState, result: [UInt8]?, error: String?) async throws(LedgerError) -> Bool {
        let finishedAt = now(), result = result.map { Data($0) }
        return try await !jobs(
            """
            UPDATE job SET state = \(state.rawValue), result = \(result), error = \(error), finished_at = \(finishedAt), lease_until = NULL,
                           input = NULL
            WHERE id = \(id) AND state = 'PROCESSING' AND attempts = \(attempt) RETURNING \(unescaped: Self.columns)
            """
        ).isEmpty
    }

    public func recoverAbandonedJobs(now: Timestamp, maxAttempts: Int) async throws(LedgerError) -> [JobRecord] {
        _ = try await jobs(
            """
            UPDATE job SET state = 'QUEUED', lease_until = NULL
            WHERE state = 'PROCESSING' AND lease_until < \(now) AND attempts < \(maxAttempts) AND cancelled_at IS NULL
            RETURNING \(unescaped: Self.columns)
            """)
        // A cancelled job is not run again: it fails as cancelled.
        return try await jobs(
            """
            UPDATE job SET state = 'FAILED', finished_at = \(now), lease_until = NULL, input = NULL,
                error = CASE WHEN cancelled_at IS NULL THEN 'the gateway stopped while generating, too many times' ELSE \(JobRecord.cancelledError) END
            WHERE state = 'PROCESSING' AND lease_until < \(now) RETURNING \(unescaped: Self.columns)
            """)
    }

    public func expireQueuedJobs(queuedBefore cutoff: Timestamp) async throws(LedgerError) -> [JobRecord] {
        let finishedAt = now()
        return try await jobs(
            """
            UPDATE job SET state = 'FAILED', error = 'the job waited too long in the queue', finished_at = \(finishedAt), input = NULL
            WHERE state = 'QUEUED' AND created_at < \(cutoff) RETURNING \(unescaped: Self.columns)
            """)
    }

    public func purgeJobs(finishedBefore cutoff: Timestamp) async throws(LedgerError) -> Int {
        try await perform { client, logger in
            let purged = try await Self.first(
                client.query(
                    """
                    WITH purged AS (DELETE FROM job WHERE finished_at < \(cutoff) AND settled_at IS NOT NULL RETURNING 1)
                    SELECT COUNT(*) FROM purged
                    """, logger: logger),
                Int64.self)
            return Int(purged ?? 0)
        }
    }

    public func cancelJob(id: String) async throws(LedgerError) -> JobCancellation {
        let at = now()
        // One statement: it waits for a claim or the upkeep that holds the row and then decides on
        // the state they left, so a job is either removed while queued or marked while running,
        // never both or neither. (As two, a running job put back in the queue between them was
        // neither: "unchanged", and it ran.) Its state after says which it was.
        if let cancelled = try await jobs(
            """
            UPDATE job SET state = CASE state WHEN 'QUEUED' THEN 'FAILED' ELSE state END,
                           error = CASE state WHEN 'QUEUED' THEN \(JobRecord.cancelledError) ELSE error END,
                           finished_at = CASE state WHEN 'QUEUED' THEN \(at) ELSE finished_at END,
                           input = CASE state WHEN 'QUEUED' THEN NULL ELSE input END,
                           cancelled_at = \(at)
            WHERE id = \(id) AND (state = 'QUEUED' OR (state = 'PROCESSING' AND cancelled_at IS NULL))
            RETURNING \(unescaped: Self.columns)
            """
        ).first {
            return cancelled.state == .failed ? .removed(cancelled) : .stopping(cancelled)
        }
        return try await job(id: id).map { JobCancellation.unchanged($0) } ?? .notFound
    }

    public func queuedJobs() async throws(LedgerError) -> [QueuedJob] {
        try await perform { client, logger in
            var queued: [QueuedJob] = []
            for try await (id, key, model, turn) in try await client.query(
                """
                SELECT q.id, q.key_id, q.model, (SELECT MAX(c.claim_turn) FROM job c WHERE c.key_id = q.key_id)
                FROM job q WHERE q.state = 'QUEUED' ORDER BY q.created_at, q.id
                """, logger: logger
            ).decode((String, String, String, Int64?).self) {
                queued.append(QueuedJob(id: id, keyID: key, model: model, keyLastTurn: turn))
            }
            return queued
        }
    }

    private typealias JobRow = (
        String, Int64, String, String, String, Data, String, Int64, String, Int, Data?, String?, Int64, Int64?, Int64?, Data?
    )

    /// Runs a query that answers job rows. (An autoclosure: binding `Data` can throw.)
    private func jobs(_ query: @autoclosure () throws -> PostgresQuery) async throws(LedgerError) -> [JobRecord] {
        try await perform { client, logger in
            var records: [JobRecord] = []
            for try await row in try await client.query(try query(), logger: logger).decode(JobRow.self) { records.append(Self.record(row)) }
            return records
        }
    }

    private static func record(_ row: JobRow) -> JobRecord {
        JobRecord(
            id: row.0, publicID: row.1, keyID: row.2, dialect: row.3, model: row.4, payload: Array(row.5), hold: HoldID(row.6),
            cost: Credits(microCredits: row.7), state: JobState(rawValue: row.8) ?? .failed, attempts: row.9,
            result: row.10.map(Array.init), error: row.11, createdAt: row.12, finishedAt: row.13, cancelledAt: row.14,
            input: row.15.map(Array.init))
    }
}
