import Foundation
import GatewayAPI
import GenerationCore
import Ledger
import Logging
import Synchronization
import TestSupport
import Testing

/// The limiters a gateway may apply: this process's token bucket, and the database's cell (GCRA) that
/// replicas on one PostgreSQL share. Both give a key `perMinute` requests at once, refilled
/// continuously, and say how long a refused request waits. PostgreSQL needs SDGATE_TEST_POSTGRES_URL.
enum RateLimitSubject: String, CaseIterable, CustomStringConvertible {
    case memory
    case postgres

    var description: String { rawValue }

    static var available: [RateLimitSubject] {
        allCases.filter { $0 != .postgres || ProcessInfo.processInfo.environment["SDGATE_TEST_POSTGRES_URL"] != nil }
    }

    /// A limiter that reads `seconds`, and another on the same store, as another replica sees it
    /// (the same one for memory, which is one process's).
    func make(_ seconds: Seconds) async throws -> (limiter: any RateLimiting, replica: any RateLimiting, database: String?) {
        let local = RateLimiter(now: { seconds.now })
        switch self {
        case .memory: return (local, local, nil)
        case .postgres:
            let url = try await ReplicaTests.freshDatabase()
            let limiters = try await [url, url].asyncMap { url in
                DatabaseRateLimits(
                    store: try await PostgresLedger(url: url), fallback: RateLimiter(now: { seconds.now }), logger: Logger(label: "test"))
            }
            return (limiters[0], limiters[1], url)
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
        let (limiter, replica, _) = try await subject.make(seconds)
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
        let (limiter, _, _) = try await subject.make(Seconds())
        #expect(await limiter.check(key: "slow", perMinute: 0) == .allowed(remaining: 0))
        #expect(await limiter.check(key: "slow", perMinute: -3) == .limited(retryAfter: 60))
        #expect(await limiter.check(key: "other", perMinute: 1) == .allowed(remaining: 0))
        // The largest rate a key may have: one request every 60 microseconds.
        #expect(await limiter.check(key: "fast", perMinute: 1_000_000) == .allowed(remaining: 999_999))
    }

    /// Forty requests at once, half through each replica, on a key limited to ten: ten pass.
    @Test(arguments: RateLimitSubject.available)
    func aBurstOverTwoReplicasGetsExactlyTheLimit(subject: RateLimitSubject) async throws {
        let (limiter, replica, _) = try await subject.make(Seconds())
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
        let (limiter, _, database) = try await RateLimitSubject.postgres.make(Seconds())
        #expect(await limiter.check(key: "k", perMinute: 1) == .allowed(remaining: 0))
        let dropped = try await Command.run("psql", [try #require(database), "-q", "-c", "DROP TABLE rate_limit"])
        #expect(dropped.status == 0, "\(dropped.errors)")
        #expect(await limiter.check(key: "k", perMinute: 1) == .allowed(remaining: 0))
        #expect(await limiter.check(key: "k", perMinute: 1) == .limited(retryAfter: 60))
    }
}
