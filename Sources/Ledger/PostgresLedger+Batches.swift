import Foundation
import GenerationCore
import Logging
import PostgresNIO

/// The batched hot path: concurrent reserves, and concurrent settles, go to PostgreSQL as one
/// statement and one commit each (`PostgresBatcher`), falling back to the single statements.
extension PostgresLedger {
    /// Reserves a batch: all at once, then those the batch statement left undecided one by one
    /// (`singles` counts these). A request that the single statement did not hold is answered nil.
    static func reserve(
        _ requests: [HoldRequest], now: Timestamp, client: PostgresClient,
        logger: Logger, singles: StatementCount
    ) async -> [Result<BatchedReserve?, LedgerError>] {
        await answer(
            requests, id: \.holdID, logger: logger,
            all: { batch in
                var decided: [String: BatchedReserve] = [:]
                for try await (hold, held, available, teamAvailable) in try await client.execute(
                    BatchReserveStatement(requests: batch, now: now), logger: logger)
                {
                    decided[hold] = held ? .held(available: available, teamAvailable: teamAvailable) : .refused(spendable: available)
                }
                return decided
            },
            one: { request in
                singles.add()
                let statement = ReserveStatement(
                    keyID: request.keyID, amount: request.amount, holdID: request.holdID,
                    expiresAt: request.expiresAt, now: now)
                return try await first(client.execute(statement, logger: logger)).map { .held(available: $0, teamAvailable: $1) }
            })
    }

    /// Settles a batch: all at once, then those the batch left open one by one.
    static func settle(
        _ requests: [SettleRequest], now: Timestamp, client: PostgresClient,
        logger: Logger
    ) async -> [Result<Balance?, LedgerError>] {
        await answer(
            requests, id: \.holdID, logger: logger,
            all: { batch in
                var settled: [String: Balance] = [:]
                for try await row in try await client.execute(BatchSettleStatement(requests: batch, now: now), logger: logger) {
                    settled[row.0] = Self.balance(
                        (row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10, row.11, row.12, row.13))
                }
                return settled
            },
            one: { request in
                let statement = SettleStatement(
                    state: request.state, charge: request.charge, reason: request.reason, now: now, holdID: request.holdID)
                return try await first(client.execute(statement, logger: logger)).map { Self.balance($0) }
            })
    }

    /// Answers a batch in the order of its requests: `all` runs the batch statement (when there is
    /// more than one request) and gives the answers of the requests it decided; every other one, or
    /// every request if the batch failed, runs `one`, the single statement. A row named twice by
    /// `id` (a post racing a void on one hold, two checks of one key's rate) goes into the batch
    /// once, as a statement may change a row only once; the repeat runs alone after it and sees
    /// the row the batch left (the hold settled, the key's rate taken).
    static func answer<Request, Answer: Sendable>(
        _ requests: [Request], id: KeyPath<Request, String>, logger: Logger,
        all: ([Request]) async throws -> [String: Answer], one: (Request) async throws -> Answer?
    ) async -> [Result<Answer?, LedgerError>] {
        var named = Set<String>()
        let batch = requests.filter { named.insert($0[keyPath: id]).inserted }
        var answered: [String: Answer] = [:]
        if batch.count > 1 {
            do {
                answered = try await all(batch)
            } catch {
                logger.warning(
                    "a batched ledger statement failed; running its requests one by one",
                    metadata: ["error": "\(String(reflecting: error))"])
            }
        }
        var answers: [Result<Answer?, LedgerError>] = []
        for request in requests {
            if let answer = answered.removeValue(forKey: request[keyPath: id]) {
                answers.append(.success(answer))
            } else {
                answers.append(await outcome { try await one(request) })
            }
        }
        return answers
    }
}

/// What a reserve's batch decided: a hold, with what the key and its team have available after
/// the batch, or a refusal that no order of the batch could have avoided, with what the key can
/// spend (`Balance.spendable`).
enum BatchedReserve: Sendable, Equatable {
    case held(available: Int64, teamAvailable: Int64?)
    case refused(spendable: Int64)
}
