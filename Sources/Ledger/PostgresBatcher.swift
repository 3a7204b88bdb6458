import Synchronization

/// Group commit for the PostgreSQL ledger's hot path. Every commit waits for PostgreSQL to flush
/// its write-ahead log to disk (milliseconds), so one statement per request caps a busy gateway at
/// a few thousand commits a second however fast the statements run. Requests that arrive while
/// earlier batches are being written wait and go together into the next batch: one statement and
/// one commit for all of them.
///
/// A few batches run at once (`maxInFlight`), on separate connections, so that one batch's flush
/// overlaps the next batch's work. A lone request runs as soon as it arrives, so an idle gateway
/// pays no waiting.
final class PostgresBatcher<Request: Sendable, Answer: Sendable>: Sendable {
    typealias Run = @Sendable ([Request]) async -> [Result<Answer, LedgerError>]

    private struct Waiting: Sendable {
        let request: Request
        let continuation: CheckedContinuation<Answer, any Error>
    }

    private let run: Run
    private let maxBatch: Int
    private let maxInFlight: Int
    private let state = Mutex<(waiting: [Waiting], inFlight: Int)>(([], 0))

    /// - Parameter run: answers a batch, one result per request in the same order.
    init(maxBatch: Int = 256, maxInFlight: Int = 4, run: @escaping Run) {
        self.run = run
        self.maxBatch = maxBatch
        self.maxInFlight = maxInFlight
    }

    func submit(_ request: Request) async throws(LedgerError) -> Answer {
        do {
            return try await withCheckedThrowingContinuation { continuation in
                let startsBatch = state.withLock { state in
                    state.waiting.append(Waiting(request: request, continuation: continuation))
                    guard state.inFlight < maxInFlight else { return false }
                    state.inFlight += 1
                    return true
                }
                if startsBatch { Task { await drain() } }
            }
        } catch let error as LedgerError {
            throw error
        } catch {
            throw .storage(String(reflecting: error))
        }
    }

    /// Runs batches until nobody is waiting.
    private func drain() async {
        while true {
            let batch = state.withLock { state in
                let batch = Array(state.waiting.prefix(maxBatch))
                state.waiting.removeFirst(batch.count)
                if batch.isEmpty { state.inFlight -= 1 }
                return batch
            }
            if batch.isEmpty { return }
            let answers = await run(batch.map(\.request))
            precondition(answers.count == batch.count, "a batch must answer every request")
            for (waiting, answer) in zip(batch, answers) { waiting.continuation.resume(with: answer.mapError { $0 }) }
        }
    }
}

/// A reserve waiting for its batch.
struct HoldRequest: Sendable {
    let keyID: String
    let amount: Int64
    let holdID: String
    let expiresAt: Int64
}

/// A post or void waiting for its batch.
struct SettleRequest: Sendable {
    let holdID: String
    /// "posted" or "voided".
    let state: String
    let charge: Int64
    let reason: String
}
