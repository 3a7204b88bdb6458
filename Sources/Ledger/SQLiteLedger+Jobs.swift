import Foundation
import GRDB
import GenerationCore

/// The job queue in the SQLite file. Writes are serialized, so claiming the next job in turn is
/// one atomic UPDATE.
extension SQLiteLedger: JobStore {
    static let jobsSchema = """
        CREATE TABLE job (
            id TEXT PRIMARY KEY,
            key_id TEXT NOT NULL,
            dialect TEXT NOT NULL,
            model TEXT NOT NULL,
            payload BLOB NOT NULL,
            hold_id TEXT NOT NULL,
            cost INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED')),
            attempts INTEGER NOT NULL DEFAULT 0,
            lease_until INTEGER,
            result BLOB,
            error TEXT,
            created_at INTEGER NOT NULL,
            finished_at INTEGER
        );
        CREATE INDEX job_queued ON job (created_at) WHERE state = 'QUEUED';
        CREATE INDEX job_leased ON job (lease_until) WHERE state = 'PROCESSING';
        CREATE INDEX job_finished ON job (finished_at) WHERE finished_at IS NOT NULL;
        """

    /// Each claim's turn, so that the next claim goes to the key whose last turn is the oldest.
    static let jobTurnsSchema = """
        ALTER TABLE job ADD COLUMN claim_turn INTEGER;
        CREATE INDEX job_turns_by_key ON job (key_id, claim_turn);
        CREATE INDEX job_turns ON job (claim_turn);
        CREATE INDEX job_queued_by_key ON job (key_id) WHERE state = 'QUEUED';
        """

    /// Each job's public id (`JobPublicID`). Every insert names one; the default only lets SQLite add
    /// a NOT NULL column to the jobs there already, which are then numbered by rowid: distinct, and
    /// in range (new jobs' random numbers that meet them are drawn again, as any other duplicate).
    static let jobPublicIDsSchema = """
        ALTER TABLE job ADD COLUMN public_id INTEGER NOT NULL DEFAULT 0;
        UPDATE job SET public_id = rowid;
        CREATE UNIQUE INDEX job_by_public_id ON job (public_id);
        """

    /// When a job's key asked to cancel it (`cancelJob`).
    static let jobCancelSchema = "ALTER TABLE job ADD COLUMN cancelled_at INTEGER"

    /// A job's input image (`JobRecord.input`), apart from its payload; NULL once the job ended.
    static let jobInputSchema = "ALTER TABLE job ADD COLUMN input BLOB"

    /// Every column of a record but its input, which only a claim reads.
    private static let columns =
        "id, public_id, key_id, dialect, model, payload, hold_id, cost, state, attempts, result, error, created_at, finished_at, cancelled_at"

    public func enqueueJob(_ job: NewJob) async throws(LedgerError) -> JobRecord {
        let id = RandomUUID.make(), createdAt = now(), limit = job.maxQueuedForKey ?? Int.max, draw = JobPublicID.source
        return try await write { db in
            for _ in 0..<JobPublicID.draws {
                // Counted and inserted in one statement, under SQLite's single writer: a key cannot pass its limit.
                // A public id that another job has inserts nothing either; the count tells which stopped it.
                if let record = try Self.jobRow(
                    db,
                    sql: """
                        INSERT INTO job (id, public_id, key_id, dialect, model, payload, input, hold_id, cost, state, created_at)
                        SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, 'QUEUED', ?
                        WHERE (SELECT COUNT(*) FROM job WHERE key_id = ? AND state = 'QUEUED') < ?
                        ON CONFLICT (public_id) DO NOTHING RETURNING \(Self.columns)
                        """,
                    [
                        id, draw(), job.keyID, job.dialect, job.model, Data(job.payload), job.input.map { Data($0) }, job.hold.rawValue,
                        job.cost.microCredits, createdAt, job.keyID, limit,
                    ])
                {
                    return record
                }
                let queued = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE key_id = ? AND state = 'QUEUED'", arguments: [job.keyID])
                guard (queued ?? 0) < limit else { throw LedgerError.tooManyQueuedJobs(limit: limit) }
            }
            throw LedgerError.storage("no unused public id for a job in \(JobPublicID.draws) draws")
        }
    }

    public func job(id: String) async throws(LedgerError) -> JobRecord? {
        try await read { db in try Self.jobRow(db, sql: "SELECT \(Self.columns) FROM job WHERE id = ?", [id]) }
    }

    public func job(publicID: Int64) async throws(LedgerError) -> JobRecord? {
        try await read { db in try Self.jobRow(db, sql: "SELECT \(Self.columns) FROM job WHERE public_id = ?", [publicID]) }
    }

    public func queuedJobCount() async throws(LedgerError) -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE state = 'QUEUED'") ?? 0 }
    }

    public func claimJob(leaseUntil: Timestamp) async throws(LedgerError) -> JobRecord? {
        try await write { db in
            try Self.jobRow(
                db,
                sql: """
                    UPDATE job SET state = 'PROCESSING', attempts = attempts + 1, lease_until = ?,
                                   claim_turn = (SELECT COALESCE(MAX(claim_turn), 0) + 1 FROM job)
                    WHERE id = (\(Self.nextInTurn)) RETURNING \(Self.columns), input
                    """, [leaseUntil])
        }
    }

    /// The queued job to claim next: keys take turns (the key whose last claim is the oldest, or
    /// that never had one, goes first), and each key's jobs go oldest first. One key's backlog
    /// thus never holds another key's job back by more than one job per runner.
    private static let nextInTurn = """
        SELECT q.id FROM job q WHERE q.state = 'QUEUED'
        ORDER BY (SELECT MAX(c.claim_turn) FROM job c WHERE c.key_id = q.key_id) NULLS FIRST, q.created_at, q.rowid LIMIT 1
        """

    public func renewJobLease(id: String, attempt: Int, until: Timestamp) async throws(LedgerError) -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE job SET lease_until = ? WHERE id = ? AND state = 'PROCESSING' AND attempts = ?", arguments: [until, id, attempt])
            return db.changesCount == 1
        }
    }

    public func finishJob(id: String, attempt: Int, state: JobState, result: [UInt8]?, error: String?) async throws(LedgerError) -> Bool {
        let finishedAt = now()
        return try await write { db in
            try db.execute(
                sql: """
                    UPDATE job SET state = ?, result = ?, error = ?, finished_at = ?, lease_until = NULL, input = NULL
                    WHERE id = ? AND state = 'PROCESSING' AND attempts = ?
                    """, arguments: [state.rawValue, result.map { Data($0) }, error, finishedAt, id, attempt])
            return db.changesCount == 1
        }
    }

    public func recoverAbandonedJobs(now: Timestamp, maxAttempts: Int) async throws(LedgerError) -> [JobRecord] {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE job SET state = 'QUEUED', lease_until = NULL
                    WHERE state = 'PROCESSING' AND lease_until < ? AND attempts < ? AND cancelled_at IS NULL
                    """, arguments: [now, maxAttempts])
            // A cancelled job is not run again: it fails as cancelled.
            return try Self.jobRows(
                db,
                sql: """
                    UPDATE job SET state = 'FAILED', finished_at = ?, lease_until = NULL, input = NULL,
                        error = CASE WHEN cancelled_at IS NULL THEN 'the gateway stopped while generating, too many times' ELSE ? END
                    WHERE state = 'PROCESSING' AND lease_until < ? RETURNING \(Self.columns)
                    """, [now, JobRecord.cancelledError, now])
        }
    }

    public func expireQueuedJobs(queuedBefore cutoff: Timestamp) async throws(LedgerError) -> [JobRecord] {
        let finishedAt = now()
        return try await write { db in
            try Self.jobRows(
                db,
                sql: """
                    UPDATE job SET state = 'FAILED', error = 'the job waited too long in the queue', finished_at = ?, input = NULL
                    WHERE state = 'QUEUED' AND created_at < ? RETURNING \(Self.columns)
                    """, [finishedAt, cutoff])
        }
    }

    public func purgeJobs(finishedBefore cutoff: Timestamp) async throws(LedgerError) -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM job WHERE finished_at < ? AND settled_at IS NOT NULL", arguments: [cutoff])
            return db.changesCount
        }
    }

    public func cancelJob(id: String) async throws(LedgerError) -> JobCancellation {
        let at = now()
        return try await write { db in
            // Under SQLite's single writer: a claim comes wholly before or wholly after this.
            if let removed = try Self.jobRow(
                db,
                sql: """
                    UPDATE job SET state = 'FAILED', error = ?, finished_at = ?, cancelled_at = ?, input = NULL
                    WHERE id = ? AND state = 'QUEUED' RETURNING \(Self.columns)
                    """, [JobRecord.cancelledError, at, at, id])
            {
                return .removed(removed)
            }
            if let stopping = try Self.jobRow(
                db, sql: "UPDATE job SET cancelled_at = ? WHERE id = ? AND state = 'PROCESSING' AND cancelled_at IS NULL RETURNING \(Self.columns)",
                [at, id])
            {
                return .stopping(stopping)
            }
            return try Self.jobRow(db, sql: "SELECT \(Self.columns) FROM job WHERE id = ?", [id]).map { JobCancellation.unchanged($0) } ?? .notFound
        }
    }

    public func queuedJobs() async throws(LedgerError) -> [QueuedJob] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT q.id, q.key_id, q.model, (SELECT MAX(c.claim_turn) FROM job c WHERE c.key_id = q.key_id) AS last_turn
                    FROM job q WHERE q.state = 'QUEUED' ORDER BY q.created_at, q.rowid
                    """
            ).map { QueuedJob(id: $0["id"], keyID: $0["key_id"], model: $0["model"], keyLastTurn: $0["last_turn"]) }
        }
    }

    private static func jobRow(_ db: Database, sql: String, _ arguments: StatementArguments) throws -> JobRecord? {
        try jobRows(db, sql: sql, arguments).first
    }

    private static func jobRows(_ db: Database, sql: String, _ arguments: StatementArguments) throws -> [JobRecord] {
        try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            JobRecord(
                id: row["id"], publicID: row["public_id"], keyID: row["key_id"], dialect: row["dialect"], model: row["model"],
                payload: Array(row["payload"] as Data), hold: HoldID(row["hold_id"]), cost: Credits(microCredits: row["cost"]),
                state: JobState(rawValue: row["state"]) ?? .failed, attempts: row["attempts"],
                result: (row["result"] as Data?).map(Array.init), error: row["error"], createdAt: row["created_at"],
                finishedAt: row["finished_at"], cancelledAt: row["cancelled_at"], input: (row["input"] as Data?).map(Array.init))
        }
    }
}
