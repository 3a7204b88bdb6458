import Foundation
public import GenerationCore
public import Logging
import PostgresNIO

/// The ledger for several gateway replicas: PostgreSQL, through postgres-nio's connection pool.
/// Every check-and-reserve is one statement that locks the key's row (`ReserveStatement`): atomic
/// across connections and replicas alike. Concurrent reserves, and concurrent settles, are batched
/// into one statement and one commit each (`PostgresBatcher`).
public final class PostgresLedger: Ledger {
    let client: PostgresClient
    private let running: Task<Void, Never>
    let logger: Logger
    let now: @Sendable () -> Timestamp
    private let reserves: PostgresBatcher<HoldRequest, (available: Int64, teamAvailable: Int64?)?>
    private let settles: PostgresBatcher<SettleRequest, (balance: Int64, held: Int64, teamAvailable: Int64?)?>
    private let recentKeys = RecentKeys()

    /// Connects with a URL such as `postgres://user:password@host:5432/database` and applies the
    /// migrations the database lacks.
    public init(url: String, now: @escaping @Sendable () -> Timestamp = SQLiteLedger.systemNow, logger: Logger = Logger(label: "sdgate.ledger")) async throws(LedgerError) {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, let user = components.user else {
            throw .storage("expected a URL such as postgres://user:password@host:5432/database")
        }
        let database = components.path.count > 1 ? String(components.path.dropFirst()) : nil
        let tls: PostgresClient.Configuration.TLS = components.queryItems?.first { $0.name == "sslmode" }?.value == "disable"
            ? .disable : .prefer(.makeClientConfiguration())
        var configuration = PostgresClient.Configuration(host: host, port: components.port ?? 5432, username: user,
                                                          password: components.password, database: database, tls: tls)
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
        self.now = now
        reserves = PostgresBatcher { requests in await Self.reserve(requests, now: now(), client: client, logger: logger) }
        settles = PostgresBatcher { requests in await Self.settle(requests, now: now(), client: client, logger: logger) }
        do {
            try await migrate()
        } catch {
            running.cancel()
            throw .storage("\(error)")
        }
    }

    /// The pool stops with the ledger.
    deinit {
        running.cancel()
    }

    // MARK: Keys

    public func createKey(_ key: NewKey) async throws(LedgerError) -> (key: LedgerKey, secret: String) {
        let (id, secret) = APIKeySecret.make()
        let created = LedgerKey(id: id, name: key.name, createdAt: now(), expiresAt: key.expiresAt, revokedAt: nil,
                                models: key.models, rateLimitPerMinute: key.rateLimitPerMinute, teamID: key.teamID)
        let hash = Data(APIKeySecret.hash(secret)), models = key.models?.joined(separator: ",")
        try await transaction { connection, logger in
            if let team = key.teamID, try await Self.first(connection.query("SELECT id FROM team WHERE id = \(team)", logger: logger), String.self) == nil {
                throw LedgerError.unknownTeam(team)
            }
            try await connection.query("""
                INSERT INTO api_key (id, name, secret_hash, created_at, expires_at, models, rate_limit_per_minute, team_id)
                VALUES (\(id), \(key.name), \(hash), \(created.createdAt), \(key.expiresAt), \(models), \(key.rateLimitPerMinute), \(key.teamID))
                """, logger: logger)
            try await connection.query("INSERT INTO balance (key_id, balance, held) VALUES (\(id), 0, 0)", logger: logger)
        }
        return (created, secret)
    }

    private static let keyColumns: PostgresQuery = """
        SELECT id, name, created_at, expires_at, revoked_at, models, rate_limit_per_minute, secret_hash, team_id FROM api_key
        """

    private typealias KeyRow = (String, String, Int64, Int64?, Int64?, String?, Int?, Data, String?)

    private static func key(_ row: KeyRow) -> LedgerKey {
        LedgerKey(id: row.0, name: row.1, createdAt: row.2, expiresAt: row.3, revokedAt: row.4,
                  models: row.5.map { $0.split(separator: ",").map(String.init) }, rateLimitPerMinute: row.6, teamID: row.8)
    }

    private func keyRows(where condition: String, _ value: String?) async throws(LedgerError) -> [KeyRow] {
        try await perform { client, logger in
            var query = Self.keyColumns
            if let value {
                query = PostgresQuery(unsafeSQL: query.sql + " WHERE \(condition) = $1", binds: { var binds = PostgresBindings(); binds.append(value); return binds }())
            } else {
                query = PostgresQuery(unsafeSQL: query.sql + " ORDER BY created_at, id")
            }
            var rows: [KeyRow] = []
            for try await row in try await client.query(query, logger: logger).decode(KeyRow.self) { rows.append(row) }
            return rows
        }
    }

    public func key(secret: String) async throws(LedgerError) -> LedgerKey? {
        try await recentKeys.key(secret: secret) { (id: String) throws(LedgerError) in
            try await keyRows(where: "id", id).first.map { (Self.key($0), Array($0.7)) }
        }
    }

    public func key(id: String) async throws(LedgerError) -> LedgerKey? {
        try await keyRows(where: "id", id).first.map(Self.key)
    }

    public func keys() async throws(LedgerError) -> [LedgerKey] {
        try await keyRows(where: "", nil).map(Self.key)
    }

    public func revoke(keyID: String) async throws(LedgerError) {
        let now = now()
        let found = try await perform { client, logger in
            try await Self.first(client.query("UPDATE api_key SET revoked_at = COALESCE(revoked_at, \(now)) WHERE id = \(keyID) RETURNING id",
                                              logger: logger), String.self)
        }
        recentKeys.forget(keyID)
        if found == nil { throw .unknownKey(keyID) }
    }

    public func setLimits(keyID: String, models: [String]?, rateLimitPerMinute: Int?, expiresAt: Timestamp?) async throws(LedgerError) -> LedgerKey {
        let joined = models?.joined(separator: ",")
        let found = try await perform { client, logger in
            try await Self.first(client.query("""
                UPDATE api_key SET models = \(joined), rate_limit_per_minute = \(rateLimitPerMinute), expires_at = \(expiresAt)
                WHERE id = \(keyID) RETURNING id
                """, logger: logger), String.self)
        }
        recentKeys.forget(keyID)
        guard found != nil, let key = try await key(id: keyID) else { throw .unknownKey(keyID) }
        return key
    }

    // MARK: Credits

    public func adjust(keyID: String, by amount: Credits, reason: String) async throws(LedgerError) -> Balance {
        try AdjustmentRule.check(amount)
        let micro = amount.microCredits, now = now(), kind = amount > .zero ? "topup" : "adjustment", maximum = Credits.maximum.microCredits
        return try await transaction { connection, logger in
            guard let balance = try await Self.first(connection.query("""
                UPDATE balance SET balance = balance + \(micro) WHERE key_id = \(keyID) AND balance + \(micro) - held >= 0 AND balance + \(micro) <= \(maximum)
                RETURNING balance, held, (SELECT t.balance - t.held FROM team t JOIN api_key k ON k.team_id = t.id WHERE k.id = \(keyID))
                """, logger: logger), (Int64, Int64, Int64?).self) else {
                let known = try await Self.first(connection.query("SELECT key_id FROM balance WHERE key_id = \(keyID)", logger: logger), String.self)
                throw known == nil ? LedgerError.unknownKey(keyID) : AdjustmentRule.refusal(of: amount)
            }
            try await connection.query("INSERT INTO entry (key_id, kind, amount, reason, created_at) VALUES (\(keyID), \(kind), \(micro), \(reason), \(now))",
                                       logger: logger)
            return Self.balance(balance)
        }
    }

    public func balance(keyID: String) async throws(LedgerError) -> Balance {
        guard let balance = try await perform({ client, logger in
            try await Self.first(client.query("""
                SELECT b.balance, b.held, t.balance - t.held
                FROM balance b JOIN api_key k ON k.id = b.key_id LEFT JOIN team t ON t.id = k.team_id WHERE b.key_id = \(keyID)
                """, logger: logger), (Int64, Int64, Int64?).self)
        }) else { throw .unknownKey(keyID) }
        return Self.balance(balance)
    }

    private static func balance(_ row: (Int64, Int64, Int64?)) -> Balance {
        Balance(balance: Credits(microCredits: row.0), held: Credits(microCredits: row.1), teamAvailable: row.2.map(Credits.init(microCredits:)))
    }

    public func reserve(keyID: String, amount: Credits, expiresAt: Timestamp) async throws(LedgerError) -> Reservation {
        guard amount > .zero else { throw .invalidAmount }
        let hold = HoldID(RandomUUID.make())
        let request = HoldRequest(keyID: keyID, amount: amount.microCredits, holdID: hold.rawValue, expiresAt: expiresAt)
        if let (available, teamAvailable) = try await reserves.submit(request) {
            return .held(hold, available: Credits(microCredits: teamAvailable.map { min($0, available) } ?? available))
        }
        // Nothing held: a key that may not spend (the statements hold nothing for one), or too few credits.
        guard let key = try await key(id: keyID) else { throw .unknownKey(keyID) }
        guard key.isUsable(at: now()) else { throw .unusableKey(keyID) }
        return .insufficient(available: try await balance(keyID: keyID).spendable)
    }

    public func post(_ hold: HoldID, charge: Credits) async throws(LedgerError) -> Balance {
        try await settle(hold, state: "posted", charge: charge, reason: "charged")
    }

    /// The charge goes through the batched settle statement, the usage event after it: a usage
    /// event that cannot be written is logged, and the charge stands.
    public func post(_ hold: HoldID, charge: Credits, recording usage: UsageEvent) async throws(LedgerError) -> Balance {
        let balance = try await post(hold, charge: charge)
        do {
            try await record(usage)
        } catch {
            logger.error("usage not recorded", metadata: ["request_id": "\(usage.requestID)", "error": "\(error)"])
        }
        return balance
    }

    public func void(_ hold: HoldID, reason: String) async throws(LedgerError) -> Balance {
        try await settle(hold, state: "voided", charge: .zero, reason: reason)
    }

    private func settle(_ hold: HoldID, state: String, charge: Credits, reason: String) async throws(LedgerError) -> Balance {
        let micro = charge.microCredits
        if let settled = try await settles.submit(SettleRequest(holdID: hold.rawValue, state: state, charge: micro, reason: reason)) {
            return Self.balance((settled.balance, settled.held, settled.teamAvailable))
        }
        // Nothing moved: say why.
        guard let (amount, current) = try await perform({ client, logger in
            try await Self.first(client.query("SELECT amount, state FROM hold WHERE id = \(hold.rawValue)", logger: logger), (Int64, String).self)
        }) else { throw .unknownHold(hold) }
        // A charge for work that outlived its hold is still made (see `Ledger.post`).
        let late = current == "expired" && state == "posted"
        if current != "open" && !late { throw .holdSettled(hold) }
        if micro < 0 || micro > amount { throw .chargeExceedsHold(hold) }
        if late { return try await chargeLate(hold, charge: charge) }
        throw .storage("hold \(hold) could not be settled")
    }

    /// Reserves a batch: all at once, then those the batch did not hold one by one, so that every
    /// refusal is decided by the exact single statement.
    private static func reserve(_ requests: [HoldRequest], now: Timestamp, client: PostgresClient,
                                logger: Logger) async -> [Result<(available: Int64, teamAvailable: Int64?)?, LedgerError>] {
        await answer(requests, holdID: \.holdID, logger: logger, all: { batch in
            var held: [String: (available: Int64, teamAvailable: Int64?)] = [:]
            for try await (hold, available, teamAvailable) in try await client.execute(BatchReserveStatement(requests: batch, now: now), logger: logger) {
                held[hold] = (available, teamAvailable)
            }
            return held
        }, one: { request in
            let statement = ReserveStatement(keyID: request.keyID, amount: request.amount, holdID: request.holdID,
                                             expiresAt: request.expiresAt, now: now)
            return try await first(client.execute(statement, logger: logger)).map { ($0, $1) }
        })
    }

    /// Settles a batch: all at once, then those the batch left open one by one.
    private static func settle(_ requests: [SettleRequest], now: Timestamp, client: PostgresClient,
                               logger: Logger) async -> [Result<(balance: Int64, held: Int64, teamAvailable: Int64?)?, LedgerError>] {
        await answer(requests, holdID: \.holdID, logger: logger, all: { batch in
            var settled: [String: (balance: Int64, held: Int64, teamAvailable: Int64?)] = [:]
            for try await (hold, balance, held, teamAvailable) in try await client.execute(BatchSettleStatement(requests: batch, now: now), logger: logger) {
                settled[hold] = (balance, held, teamAvailable)
            }
            return settled
        }, one: { request in
            let statement = SettleStatement(state: request.state, charge: request.charge, reason: request.reason, now: now, holdID: request.holdID)
            return try await first(client.execute(statement, logger: logger)).map { ($0, $1, $2) }
        })
    }

    /// Answers a batch in the order of its requests: `all` runs the batch statement (when there is
    /// more than one request) and gives the answers of the holds it took; every other request, or
    /// every request if the batch failed, runs `one`, the single statement. A hold named twice (a
    /// post racing a void) goes into the batch once; the repeat runs alone after it and learns
    /// that the hold is settled.
    private static func answer<Request, Answer: Sendable>(
        _ requests: [Request], holdID: KeyPath<Request, String>, logger: Logger,
        all: ([Request]) async throws -> [String: Answer], one: (Request) async throws -> Answer?
    ) async -> [Result<Answer?, LedgerError>] {
        var holds = Set<String>()
        let batch = requests.filter { holds.insert($0[keyPath: holdID]).inserted }
        var answered: [String: Answer] = [:]
        if batch.count > 1 {
            do {
                answered = try await all(batch)
            } catch {
                logger.warning("a batched ledger statement failed; running its requests one by one",
                               metadata: ["error": "\(String(reflecting: error))"])
            }
        }
        var answers: [Result<Answer?, LedgerError>] = []
        for request in requests {
            if let answer = answered.removeValue(forKey: request[keyPath: holdID]) {
                answers.append(.success(answer))
            } else {
                answers.append(await outcome { try await one(request) })
            }
        }
        return answers
    }

    public func expireHolds(now: Timestamp) async throws(LedgerError) -> Int {
        // Settled like a batch of voids, so that the keys and teams are locked in the same order
        // as everywhere else; a hold settled meanwhile is skipped.
        try await perform { client, logger in
            var overdue: [SettleRequest] = []
            for try await id in try await client.query("SELECT id FROM hold WHERE state = 'open' AND expires_at <= \(now)",
                                                       logger: logger).decode(String.self) {
                overdue.append(SettleRequest(holdID: id, state: "expired", charge: 0, reason: "expired"))
            }
            guard !overdue.isEmpty else { return 0 }
            var expired = 0
            for try await _ in try await client.execute(BatchSettleStatement(requests: overdue, now: now), logger: logger) { expired += 1 }
            return expired
        }
    }

    public func openHolds() async throws(LedgerError) -> OpenHolds {
        let row = try await perform { client, logger in
            try await Self.first(client.query("SELECT COUNT(*), COALESCE(SUM(amount), 0)::BIGINT FROM hold WHERE state = 'open'", logger: logger),
                                 (Int64, Int64).self)
        }
        return OpenHolds(count: Int(row?.0 ?? 0), amount: Credits(microCredits: row?.1 ?? 0))
    }

    public func verify() async throws(LedgerError) -> [String] {
        let rows = try await perform { client, logger in
            var rows: [(String, Int64, Int64, Int64, Int64, Int64, Int64)] = []
            for try await row in try await client.query("""
                SELECT b.key_id, b.balance, b.held,
                       COALESCE((SELECT SUM(amount) FROM entry e WHERE e.key_id = b.key_id), 0)::BIGINT,
                       COALESCE((SELECT SUM(amount) FROM hold h WHERE h.key_id = b.key_id AND h.state = 'open'), 0)::BIGINT,
                       COALESCE((SELECT SUM(charged) FROM hold h WHERE h.key_id = b.key_id AND h.state = 'posted'), 0)::BIGINT,
                       COALESCE((SELECT -SUM(amount) FROM entry e WHERE e.key_id = b.key_id AND e.kind = 'post'), 0)::BIGINT
                FROM balance b
                UNION ALL
                SELECT t.id, t.balance, t.held,
                       COALESCE((SELECT SUM(amount) FROM team_entry e WHERE e.team_id = t.id), 0)::BIGINT,
                       COALESCE((SELECT SUM(amount) FROM hold h WHERE h.team_id = t.id AND h.state = 'open'), 0)::BIGINT,
                       COALESCE((SELECT SUM(charged) FROM hold h WHERE h.team_id = t.id AND h.state = 'posted'), 0)::BIGINT,
                       COALESCE((SELECT -SUM(amount) FROM team_entry e WHERE e.team_id = t.id AND e.kind = 'post'), 0)::BIGINT
                FROM team t
                ORDER BY 1
                """, logger: logger).decode((String, Int64, Int64, Int64, Int64, Int64, Int64).self) { rows.append(row) }
            return rows
        }
        return rows.flatMap { account, balance, held, fromEntries, fromHolds, charged, posted in
            BalanceAudit(account: account, balance: balance, fromEntries: fromEntries, held: held, fromHolds: fromHolds,
                         charged: charged, posted: posted).problems
        }
    }

    // MARK: Access

    private static func first<Rows: AsyncSequence>(_ rows: Rows) async throws -> Rows.Element? {
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

    private static func outcome<T: Sendable>(_ body: () async throws -> T) async -> Result<T, LedgerError> {
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
