import GRDB
import Synchronization

/// Group commit for the SQLite ledger. Writes from concurrent callers that arrive while a
/// transaction is being written wait and go together into the next one, each in a savepoint of its
/// own, so one commit (and its WAL write) serves many requests instead of one.
///
/// Each write is still atomic on its own: one that throws rolls back its savepoint only, and its
/// caller gets the error. Callers are answered after their batch commits; a failed commit fails
/// every write of the batch, so no caller is told of a change that did not happen.
final class SQLiteGroupCommit: Sendable {
    private struct Job: Sendable {
        /// Runs the write in the open transaction; returns how to answer its caller once the
        /// transaction's fate (nil: committed) is known.
        let run: @Sendable (Database) -> @Sendable ((any Error)?) -> Void
        /// Answers the caller of a write that never ran.
        let fail: @Sendable (any Error) -> Void
    }

    private let pool: DatabasePool
    private let queue = Mutex<(jobs: [Job], draining: Bool)>(([], false))
    /// The most writes in one transaction, which bounds how long one holds the write lock.
    private let maxBatch = 256

    init(pool: DatabasePool) {
        self.pool = pool
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job = Job(
                run: { db in
                    let outcome = Result { () throws -> T in
                        var value: T?
                        try db.inSavepoint {
                            value = try body(db)
                            return .commit
                        }
                        return value!
                    }
                    return { commitError in
                        if let commitError, case .success = outcome {
                            continuation.resume(throwing: commitError)
                        } else {
                            continuation.resume(with: outcome)
                        }
                    }
                },
                fail: { continuation.resume(throwing: $0) })
            let startsDraining = queue.withLock { queue in
                queue.jobs.append(job)
                defer { queue.draining = true }
                return !queue.draining
            }
            // One drain at a time, on GRDB's writer queue: never on Swift's cooperative threads.
            if startsDraining { pool.asyncWriteWithoutTransaction { db in self.drain(db) } }
        }
    }

    /// Commits batches until no write is waiting.
    private func drain(_ db: Database) {
        while true {
            let batch = queue.withLock { queue in
                let batch = Array(queue.jobs.prefix(maxBatch))
                queue.jobs.removeFirst(batch.count)
                if batch.isEmpty { queue.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            var answers: [@Sendable ((any Error)?) -> Void] = []
            do {
                try db.inTransaction(.immediate) {
                    answers = batch.map { $0.run(db) }
                    return .commit
                }
                for answer in answers { answer(nil) }
            } catch {
                for answer in answers { answer(error) }
                for job in batch.dropFirst(answers.count) { job.fail(error) }
            }
        }
    }
}
