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

    private static let columns = "id, key_id, dialect, model, payload, hold_id, cost, state, attempts, result, error, created_at, finished_at"

    /// Each claim's turn, so that the next claim goes to the key whose last turn is the oldest.
    static let jobTurnsSchema: [PostgresQuery] = [
        "ALTER TABLE job ADD COLUMN claim_turn BIGINT",
        "CREATE SEQUENCE job_claim_turn",
        "CREATE INDEX job_turns_by_key ON job (key_id, claim_turn)",
        "CREATE INDEX job_queued_by_key ON job (key_id) WHERE state = 'QUEUED'",
    ]

    public func enqueueJob(_ job: NewJob) async throws(LedgerError) -> JobRecord {
        let id = RandomUUID.make(), createdAt = now(), payload = Data(job.payload), limit = job.maxQueuedForKey ?? Int.max
        let record = try await transaction { connection, logger -> JobRecord? in
            // Enqueues of one key take turns (the lock ends with the transaction): its count cannot pass the limit.
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(job.keyID)))", logger: logger)
            for try await row in try await connection.query(
                """
                INSERT INTO job (id, key_id, dialect, model, payload, hold_id, cost, state, created_at)
                SELECT \(id), \(job.keyID), \(job.dialect), \(job.model), \(payload), \(job.hold.rawValue), \(job.cost.microCredits), 'QUEUED', \(createdAt)
                WHERE (SELECT COUNT(*) FROM job WHERE key_id = \(job.keyID) AND state = 'QUEUED') < \(limit)
                RETURNING \(unescaped: Self.columns)
                """, logger: logger
            ).decode(JobRow.self) {
                return Self.record(row)
            }
            return nil
        }
        guard let record else { throw .tooManyQueuedJobs(limit: limit) }
        return record
    }

    public func job(id: String) async throws(LedgerError) -> JobRecord? {
        try await jobs("SELECT \(unescaped: Self.columns) FROM job WHERE id = \(id)").first
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
            RETURNING \(unescaped: Self.columns)
            """
        ).first
    }

    public func renewJobLease(id: String, until: Timestamp) async throws(LedgerError) -> Bool {
        try await !jobs(
            """
            UPDATE job SET lease_until = \(until) WHERE id = \(id) AND state = 'PROCESSING' RETURNING \(unescaped: Self.columns)
            """
        ).isEmpty
    }

    public func finishJob(id: String, state: JobState, result: [UInt8]?, error: String?) async throws(LedgerError) -> Bool {
        let finishedAt = now(), result = result.map { Data($0) }
        return try await !jobs(
            """
            UPDATE job SET state = \(state.rawValue), result = \(result), error = \(error), finished_at = \(finishedAt), lease_until = NULL
            WHERE id = \(id) AND state = 'PROCESSING' RETURNING \(unescaped: Self.columns)
            """
        ).isEmpty
    }

    public func recoverAbandonedJobs(now: Timestamp, maxAttempts: Int) async throws(LedgerError) -> [JobRecord] {
        _ = try await jobs(
            """
            UPDATE job SET state = 'QUEUED', lease_until = NULL
            WHERE state = 'PROCESSING' AND lease_until < \(now) AND attempts < \(maxAttempts) RETURNING \(unescaped: Self.columns)
            """)
        return try await jobs(
            """
            UPDATE job SET state = 'FAILED', error = 'the gateway stopped while generating, too many times', finished_at = \(now), lease_until = NULL
            WHERE state = 'PROCESSING' AND lease_until < \(now) RETURNING \(unescaped: Self.columns)
            """)
    }

    public func expireQueuedJobs(queuedBefore cutoff: Timestamp) async throws(LedgerError) -> [JobRecord] {
        let finishedAt = now()
        return try await jobs(
            """
            UPDATE job SET state = 'FAILED', error = 'the job waited too long in the queue', finished_at = \(finishedAt)
            WHERE state = 'QUEUED' AND created_at < \(cutoff) RETURNING \(unescaped: Self.columns)
            """)
    }

    public func purgeJobs(finishedBefore cutoff: Timestamp) async throws(LedgerError) -> [JobRecord] {
        try await jobs("DELETE FROM job WHERE finished_at < \(cutoff) RETURNING \(unescaped: Self.columns)")
    }

    private typealias JobRow = (String, String, String, String, Data, String, Int64, String, Int, Data?, String?, Int64, Int64?)

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
            id: row.0, keyID: row.1, dialect: row.2, model: row.3, payload: Array(row.4), hold: HoldID(row.5),
            cost: Credits(microCredits: row.6), state: JobState(rawValue: row.7) ?? .failed, attempts: row.8,
            result: row.9.map(Array.init), error: row.10, createdAt: row.11, finishedAt: row.12)
    }
}
