import GRDB
import GenerationCore
import Synchronization

/// Group commit for the SQLite ledger. Writes from concurrent callers that arrive while a
/// transaction is being written wait and go together into the next one, each in a savepoint of its
/// own, so one commit (and its WAL write) serves many requests instead of one.
///
/// Each write is still atomic on its own: one that throws rolls back its savepoint only (a write
/// alone in its transaction rolls the transaction back), and its caller gets the error. Callers are
/// answered after their batch commits; a failed commit fails every write of the batch, so no
/// caller is told of a change that did not happen.
///
/// A write that finds none under way commits its batch on its own thread, at once: the common case
/// under light load, where a hop to another thread and back would cost more than the transaction.
/// Writes that arrive meanwhile are committed after it on GRDB's writer queue, so the caller that
/// opened the batch is answered as soon as its own batch is done.
///
/// The caller's thread is an event loop, which must never wait for a lock: there the transaction
/// begins only if the write lock is free at once (a busy timeout of 0). If another process holds
/// it (`sdgate keys` on the same file, a backup), the batch goes to the writer queue, which waits
/// for the lock with the busy timeout, and the caller's task is answered from there.
final class SQLiteGroupCommit: Sendable {
    private struct Job: Sendable {
        /// Runs the write in the open transaction; returns whether it succeeded, and how to answer
        /// its caller once the transaction's fate (nil: committed) is known.
        let run: @Sendable (Database) -> (succeeded: Bool, answer: @Sendable ((any Error)?) -> Void)
        /// Answers the caller of a write that never ran.
        let fail: @Sendable (any Error) -> Void
    }

    private let pool: DatabasePool
    private let queue = Mutex<(jobs: [Job], draining: Bool)>(([], false))
    /// The most writes in one transaction, which bounds how long one holds the write lock.
    private let maxBatch = 256
    /// Copies the log back into the database file off the callers' threads; nil: the commit that
    /// crosses SQLite's mark (1,000 pages) does it.
    private let checkpointer: SQLiteCheckpointer?

    /// How long the writer queue waits for another process's write lock before the batch fails.
    private let busyTimeoutMilliseconds: Int

    init(pool: DatabasePool, busyTimeout: Duration, checkpointer: SQLiteCheckpointer?) {
        self.pool = pool
        self.checkpointer = checkpointer
        busyTimeoutMilliseconds = Int(busyTimeout.wholeMilliseconds)
        // The writer connection waits for no lock unless the writer queue asks it to (`drain`).
        pool.writeWithoutTransaction { db in
            try? db.execute(sql: "PRAGMA busy_timeout = 0")
            checkpointer?.watch(db)
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job = Job(
                run: { db in
                    let outcome = Result { try body(db) }
                    let succeeded = if case .success = outcome { true } else { false }
                    return (
                        succeeded,
                        { commitError in
                            if let commitError, succeeded {
                                continuation.resume(throwing: commitError)
                            } else {
                                continuation.resume(with: outcome)
                            }
                        }
                    )
                },
                fail: { continuation.resume(throwing: $0) })
            let startsDraining = queue.withLock { queue in
                queue.jobs.append(job)
                defer { queue.draining = true }
                return !queue.draining
            }
            // One drain at a time. This one commits its own batch here (the continuation is then
            // resumed before the task suspends, so it goes on without a hop) and leaves any later
            // batch to the writer queue.
            guard startsDraining else { return }
            pool.writeWithoutTransaction { db in
                // Another process holds the write lock: wait for it on the writer queue, not here.
                guard Self.beginNow(db) else {
                    pool.asyncWriteWithoutTransaction { db in self.drain(db) }
                    return
                }
                if commitBatch(db, begun: true) { pool.asyncWriteWithoutTransaction { db in self.drain(db) } }
            }
        }
    }

    /// Commits batches until no write is waiting; on the writer queue, where waiting for another
    /// process's write lock (up to the busy timeout) holds up no event loop.
    private func drain(_ db: Database) {
        try? db.execute(sql: "PRAGMA busy_timeout = \(busyTimeoutMilliseconds)")
        defer { try? db.execute(sql: "PRAGMA busy_timeout = 0") }
        while commitBatch(db, begun: false) {}
    }

    /// Begins the transaction if the write lock is free now; false if another connection holds it.
    private static func beginNow(_ db: Database) -> Bool {
        do {
            try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
            return true
        } catch {
            // Any other failure is met again, and reported to the callers, by the writer queue.
            return false
        }
    }

    /// Commits the waiting writes (up to `maxBatch`) in one transaction and answers their callers.
    /// Returns whether more are waiting; when none are, the drain is over.
    /// `begun`: the transaction is open already.
    private func commitBatch(_ db: Database, begun: Bool) -> Bool {
        let batch = queue.withLock { queue in
            let batch = Array(queue.jobs.prefix(maxBatch))
            queue.jobs.removeFirst(batch.count)
            return batch
        }
        if !batch.isEmpty {
            commit(batch, db, begun: begun)
        } else if begun {
            try? db.execute(sql: "ROLLBACK")
        }
        return queue.withLock { queue in
            if queue.jobs.isEmpty { queue.draining = false }
            return queue.draining
        }
    }

    /// The transaction's statements are prepared once per connection and kept (`cachedStatement`):
    /// preparing them anew, as `inTransaction` and `inSavepoint` do, cost more than the writes.
    private func commit(_ batch: [Job], _ db: Database, begun: Bool) {
        var answers: [@Sendable ((any Error)?) -> Void] = []
        do {
            if !begun { try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute() }
            if batch.count == 1 {
                let (succeeded, answer) = batch[0].run(db)
                answers.append(answer)
                try db.cachedStatement(sql: succeeded ? "COMMIT" : "ROLLBACK").execute()
            } else {
                for job in batch {
                    try db.cachedStatement(sql: "SAVEPOINT write").execute()
                    let (succeeded, answer) = job.run(db)
                    answers.append(answer)
                    if !succeeded { try db.cachedStatement(sql: "ROLLBACK TO write").execute() }
                    try db.cachedStatement(sql: "RELEASE write").execute()
                }
                try db.cachedStatement(sql: "COMMIT").execute()
            }
            for answer in answers { answer(nil) }
        } catch {
            if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK") }
            for answer in answers { answer(error) }
            for job in batch.dropFirst(answers.count) { job.fail(error) }
        }
    }
}
