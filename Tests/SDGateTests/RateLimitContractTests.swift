import Foundation
import GatewayAPI
import GenerationCore
import Logging
import Synchronization
import TestSupport
import Testing

@testable import Ledger

/// The limiters a gateway may apply: this process's token bucket, and the database's cell (GCRA) that
/// replicas on one PostgreSQL share. Both give a key `perMinute` requests at once, refilled
/// continuously, and say how long a refused request waits. PostgreSQL needs SDGATE_TEST_POSTGRES_URL.
enum RateLimitSubject: String, CaseIterable, CustomStringConvertible {
    case memory
    case postgres

    var description: String { rawValue }

    static var available: [RateLimitSubject] {
        allCases.filter { $0 != .postgres || TestPostgres.url != nil }
    }

    /// A limiter that reads `seconds`, and another on the same store, as another replica sees it
    /// (the same one for memory, which is one process's), with the ledgers under them.
    func make(_ seconds: Seconds) async throws -> (
        limiter: any RateLimiting, replica: any RateLimiting, database: String?, ledgers: [PostgresLedger]
    ) {
        let local = RateLimiter(now: { seconds.now })
        switch self {
        case .memory: return (local, local, nil, [])
        case .postgres:
            let url = try await TestPostgres.freshDatabase("rate_limits")
            let ledgers = try await [url, url].asyncMap { url in try await PostgresLedger(url: url) }
            let limiters = ledgers.map { ledger in
                DatabaseRateLimits(store: ledger, fallback: RateLimiter(now: { seconds.now }), logger: Logger(label: "test"))
            }
            return (limiters[0], limiters[1], url, ledgers)
        }
    }
}

/// Seconds since 1970 that the tests move by hand.
final class Seconds: Sendable {
    private let value = Mutex<Double>(1_800_000_000)
    var now: Double { value.withLock { $0 } }
    func advance(_ seconds: Double) { value.withLock { $0 += seconds } }
}

extension Array where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var mapped: [T] = []
        for element in self { mapped.append(try await transform(element)) }
        return mapped
    }
}

@Suite("Rate limit contract")
struct RateLimitContractTests {
    @Test(arguments: RateLimitSubject.available)
    func aKeyGetsItsBurstThenWaitsForTheRefill(subject: RateLimitSubject) async throws {
        let seconds = Seconds()
        let (limiter, replica, _, _) = try await subject.make(seconds)
        #expect(await limiter.check(key: "k", perMinute: 3) == .allowed(remaining: 2))
        #expect(await replica.check(key: "k", perMinute: 3) == .allowed(remaining: 1))
        #expect(await limiter.check(key: "k", perMinute: 3) == .allowed(remaining: 0))
        #expect(await replica.check(key: "k", perMinute: 3) == .limited(retryAfter: 20))
        seconds.advance(15)
        #expect(await limiter.check(key: "k", perMinute: 3) == .limited(retryAfter: 5))
        seconds.advance(5)
        #expect(await replica.check(key: "k", perMinute: 3) == .allowed(remaining: 0))
        // A quiet hour refills to the burst, no further.
        seconds.advance(3600)
        #expect(await limiter.check(key: "k", perMinute: 3) == .allowed(remaining: 2))
    }

    @Test(arguments: RateLimitSubject.available)
    func keysAreLimitedApartAndARateBelowOneIsOneAMinute(subject: RateLimitSubject) async throws {
        let (limiter, _, _, _) = try await subject.make(Seconds())
        #expect(await limiter.check(key: "slow", perMinute: 0) == .allowed(remaining: 0))
        #expect(await limiter.check(key: "slow", perMinute: -3) == .limited(retryAfter: 60))
        #expect(await limiter.check(key: "other", perMinute: 1) == .allowed(remaining: 0))
        // The largest rate a key may have: one request every 60 microseconds.
        #expect(await limiter.check(key: "fast", perMinute: 1_000_000) == .allowed(remaining: 999_999))
    }

    /// Forty requests at once, half through each replica, on a key limited to ten: ten pass.
    @Test(arguments: RateLimitSubject.available)
    func aBurstOverTwoReplicasGetsExactlyTheLimit(subject: RateLimitSubject) async throws {
        let (limiter, replica, _, _) = try await subject.make(Seconds())
        let allowed = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<40 {
                let target = index.isMultiple(of: 2) ? limiter : replica
                group.addTask {
                    guard case .allowed = await target.check(key: "burst", perMinute: 10) else { return false }
                    return true
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(allowed == 10)
    }

    /// A database that cannot answer (its table gone) does not refuse the key: each replica applies
    /// the limit to what it sees, and still limits.
    @Test(.enabled(if: RateLimitSubject.available.contains(.postgres)))
    func aDatabaseThatFailsFallsBackToThisProcesssLimit() async throws {
        let (limiter, _, database, _) = try await RateLimitSubject.postgres.make(Seconds())
        #expect(await limiter.check(key: "k", perMinute: 1) == .allowed(remaining: 0))
        let dropped = try await Command.run("psql", [try #require(database), "-q", "-c", "DROP TABLE rate_limit"])
        #expect(dropped.status == 0, "\(dropped.errors)")
        #expect(await limiter.check(key: "k", perMinute: 1) == .allowed(remaining: 0))
        #expect(await limiter.check(key: "k", perMinute: 1) == .limited(retryAfter: 60))
    }

    /// 400 checks at once over 40 keys limited to 3 a minute, half through each replica: each key
    /// gets exactly its 3, and every other check waits for the next of the key's refills. On
    /// PostgreSQL the checks go to the database in batches, each key's repeats one after the other.
    @Test(arguments: RateLimitSubject.available)
    func manyKeysLimitedAtOnceOverTwoReplicasGetExactlyTheirLimitEach(subject: RateLimitSubject) async throws {
        let (limiter, replica, _, ledgers) = try await subject.make(Seconds())
        let (keys, perMinute) = ((0..<40).map { "key-\($0)" }, 3)
        let decisions = await withTaskGroup(of: (String, RateDecision).self) { group in
            for index in 0..<400 {
                let (key, target) = (keys[index % keys.count], index.isMultiple(of: 2) ? limiter : replica)
                group.addTask { (key, await target.check(key: key, perMinute: perMinute)) }
            }
            return await group.reduce(into: [String: [RateDecision]]()) { $0[$1.0, default: []].append($1.1) }
        }
        #expect(decisions.count == keys.count)
        for (key, answers) in decisions {
            let allowed = answers.filter { if case .allowed = $0 { true } else { false } }
            #expect(allowed.count == perMinute, "\(key): \(answers)")
            // The clock stands still: a refused check waits for the key's first request to refill.
            #expect(answers.filter { $0 == .limited(retryAfter: 60 / Double(perMinute)) }.count == answers.count - perMinute, "\(key)")
        }
        if subject == .postgres {
            #expect(ledgers.map(\.rateBatches.count).reduce(0, +) > 0, "concurrent checks went to the database together")
        }
    }

    /// A batch names a key many times among others: the batch statement decides each key's first
    /// request, and its repeats are decided one after the other, exactly as the single statement
    /// decides the same requests one by one on another database (new rows, then rows that the
    /// batch statement updates). The key limited to 3 a minute gets its 3, then 20 seconds later 1.
    @Test(.enabled(if: RateLimitSubject.available.contains(.postgres)))
    func aKeyNamedManyTimesInOneBatchGetsExactlyItsLimit() async throws {
        let batched = try await PostgresLedger(url: try await TestPostgres.freshDatabase("rate_limits"))
        let alone = try await PostgresLedger(url: try await TestPostgres.freshDatabase("rate_limits"))
        let start: Int64 = 1_800_000_000_000_000
        for (round, (at, allowedA)) in [(start, 3), (start + 20_000_000, 1)].enumerated() {
            let batch = Self.interleaved(at: at)
            let answers = try await PostgresLedger.takeRequests(
                batch.map(\.request), client: batched.client, logger: Logger(label: "test"), batches: batched.rateBatches
            ).map { try $0.get() }
            var expected: [RateDecision?] = []
            for request in batch { expected.append(try await alone.takeRequest(keyID: request.key, perMinute: request.perMinute, now: request.now)) }
            #expect(answers == expected, "round \(round)")
            let allowed = zip(batch, answers).filter { request, answer in
                guard request.key == "a", case .allowed = answer else { return false }
                return true
            }
            #expect(allowed.count == allowedA, "round \(round): \(answers)")
            #expect(batched.rateBatches.count == round + 1, "one batch statement a round")
        }
        #expect(alone.rateBatches.count == 0)
    }

    /// A batch statement that fails (here refused by a trigger that lets single statements pass)
    /// leaves every request to the single statement: each still gets its exact answer.
    @Test(.enabled(if: RateLimitSubject.available.contains(.postgres)))
    func aBatchStatementThatFailsFallsBackToTheSingleStatements() async throws {
        let database = try await TestPostgres.freshDatabase("rate_limits")
        let (ledger, alone) = (
            try await PostgresLedger(url: database), try await PostgresLedger(url: try await TestPostgres.freshDatabase("rate_limits"))
        )
        let trigger = try await Command.run(
            "psql",
            [
                database, "-q", "-c",
                """
                CREATE FUNCTION refuse_batches() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF current_query() LIKE '%unnest(%' THEN RAISE EXCEPTION 'no batches here'; END IF; RETURN NEW; END $$;
                CREATE TRIGGER refuse_batches BEFORE INSERT OR UPDATE ON rate_limit FOR EACH ROW EXECUTE FUNCTION refuse_batches();
                """,
            ])
        #expect(trigger.status == 0, "\(trigger.errors)")
        let batch = Self.interleaved(at: 1_800_000_000_000_000)
        let answers = try await PostgresLedger.takeRequests(
            batch.map(\.request), client: ledger.client, logger: Logger(label: "test"), batches: ledger.rateBatches
        ).map { try $0.get() }
        var expected: [RateDecision?] = []
        for request in batch { expected.append(try await alone.takeRequest(keyID: request.key, perMinute: request.perMinute, now: request.now)) }
        #expect(answers == expected)
        #expect(answers.compactMap { $0 }.count == batch.count)
        #expect(ledger.rateBatches.count == 0, "the batch statement was refused")
    }

    /// Six requests of a key limited to 3 a minute among those of keys limited to 1 and to a
    /// million, each a microsecond after the one before.
    static func interleaved(at start: Int64) -> [(key: String, perMinute: Int, now: Int64, request: RateRequest)] {
        let keys = [("a", 3), ("b", 1), ("a", 3), ("c", 1_000_000), ("a", 3), ("b", 1), ("a", 3), ("a", 3), ("a", 3)]
        return keys.enumerated().map { index, key in
            let now = start + Int64(index)
            return (key.0, key.1, now, RateRequest(keyID: key.0, cell: RateCell(perMinute: key.1), now: now))
        }
    }
}
