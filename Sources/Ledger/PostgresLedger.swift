import Foundation
public import GenerationCore
public import Logging
import PostgresNIO

/// The ledger for several gateway replicas: PostgreSQL, through postgres-nio's connection pool.
/// Every check-and-reserve is one statement that locks the key's row (`ReserveStatement`): atomic
/// across connections and replicas alike. Concurrent reserves, concurrent settles, and concurrent
/// rate-limit checks are batched into one statement and one commit each (`PostgresBatcher`).
public final class PostgresLedger: Ledger {
    let client: PostgresClient
    private let running: Task<Void, Never>
    let logger: Logger
    let clock: any WallClock
    let reserves: PostgresBatcher<HoldRequest, BatchedReserve?>
    /// Reserves that a batch left to the single statement.
    let reserveSingles: StatementCount
    let settles: PostgresBatcher<SettleRequest, Balance?>
    let rates: PostgresBatcher<RateRequest, RateDecision?>
    /// Batch statements of `rates` that answered.
    let rateBatches: StatementCount
    let recentKeys = RecentKeys()

    func now() -> Timestamp { clock.millisecondsNow }

    /// Connects with a URL such as `postgres://user:password@host:5432/database?sslmode=verify-full`
    /// (`PostgresSSLMode`) and applies the migrations the database lacks.
    public init(url: String, clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "sdgate.ledger")) async throws(LedgerError) {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme?.lowercased() ?? ""),
            let host = components.host, let user = components.user
        else {
            throw .storage("expected a URL such as postgres://user:password@host:5432/database")
        }
        // Any number passes the URL parser; past 65535 the pool only said its circuit breaker tripped.
        guard (1...65_535).contains(components.port ?? 5432) else { throw .storage("the database URL's port must be 1 to 65535") }
        let database = components.path.count > 1 ? String(components.path.dropFirst()) : nil
        let sslMode: PostgresSSLMode
        do {
            sslMode = try PostgresSSLMode(url: url)
        } catch {
            throw .storage(error.description)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user,
            password: components.password, database: database, tls: sslMode.tls)
        // Generation requests come in bursts; each ledger call is one short statement.
        configuration.options.maximumConnections = 32
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        // The pool warns about any lease taken before `run()` has begun, so the migrations wait for it.
        let (started, begin) = AsyncStream<Never>.makeStream()
        running = Task {
            begin.finish()
            await client.run()
        }
        for await _ in started {}
        self.logger = logger
        self.clock = clock
        let reserveSingles = StatementCount()
        self.reserveSingles = reserveSingles
        reserves = PostgresBatcher { requests in
            await Self.reserve(requests, now: clock.millisecondsNow, client: client, logger: logger, singles: reserveSingles)
        }
        settles = PostgresBatcher { requests in await Self.settle(requests, now: clock.millisecondsNow, client: client, logger: logger) }
        let rateBatches = StatementCount()
        self.rateBatches = rateBatches
        rates = PostgresBatcher { requests in await Self.takeRequests(requests, client: client, logger: logger, batches: rateBatches) }
        do {
            try await migrate()
        } catch {
            running.cancel()
            if let refusal = (error as? PostgresTransactionError)?.closureError as? LedgerError { throw refusal }
            throw .storage("\(error)")
        }
    }

    /// The pool stops with the ledger.
    deinit {
        running.cancel()
    }

    // MARK: Access

    static func first<Rows: AsyncSequence>(_ rows: Rows) async throws -> Rows.Element? {
        for try await row in rows { return row }
        return nil
    }

    static func first<each Column: PostgresDecodable>(
        _ rows: PostgresRowSequence, _ type: (repeat each Column).Type
    ) async throws -> (repeat each Column)? {
        for try await row in rows.decode(type) { return row }
        return nil
    }

    @discardableResult
    func perform<T: Sendable>(_ body: (PostgresClient, Logger) async throws -> T) async throws(LedgerError) -> T {
        try await Self.storageErrors { try await body(client, logger) }
    }

    static func outcome<T: Sendable>(_ body: () async throws -> T) async -> Result<T, LedgerError> {
        do {
            return .success(try await storageErrors(body))
        } catch {
            return .failure(error)
        }
    }

    private static func storageErrors<T: Sendable>(_ body: () async throws -> T) async throws(LedgerError) -> T {
        do {
            return try await body()
        } catch let error as LedgerError {
            throw error
        } catch {
            throw .storage(String(reflecting: error))
        }
    }

    func transaction<T: Sendable>(_ body: (PostgresConnection, Logger) async throws -> T) async throws(LedgerError) -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection, self.logger) }
        } catch let error as PostgresTransactionError {
            if let ledgerError = error.closureError as? LedgerError { throw ledgerError }
            throw .storage(String(reflecting: error))
        } catch let error as LedgerError {
            throw error
        } catch {
            throw .storage(String(reflecting: error))
        }
    }
}
