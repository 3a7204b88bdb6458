public import GenerationCore
public import Logging

/// A database that keeps keys' request rates for every gateway using it (PostgreSQL): one row per
/// limited key, decided and recorded by one atomic statement.
public protocol RateLimitStore: Sendable {
    /// Takes one request from the key's allowance of `perMinute` (refilled continuously, at most
    /// `perMinute` at once) at `now`, in microseconds since 1970.
    func takeRequest(keyID: String, perMinute: Int, now: Int64) async throws(LedgerError) -> RateDecision
}

/// The rate limits of gateways that share a database: every request of a limited key, whichever
/// replica and dialect it reaches, is counted in the one row of its key. While the database cannot
/// be reached the limit falls back to this process's own (`fallback`): a replica then applies the
/// limit to what it sees, as a single gateway would, and never refuses a key because of the outage.
public struct DatabaseRateLimits: RateLimiting {
    let store: any RateLimitStore
    let fallback: any RateLimiting
    let logger: Logger

    public init(store: any RateLimitStore, fallback: any RateLimiting, logger: Logger) {
        self.store = store
        self.fallback = fallback
        self.logger = logger
    }

    public var now: @Sendable () -> Double { fallback.now }

    public func check(key: String, perMinute limit: Int) async -> RateDecision {
        // Microseconds: a rate of a million a minute is one request every 60, still a whole number.
        let now = Int64((now() * 1_000_000).rounded(.down))
        do {
            return try await store.takeRequest(keyID: key, perMinute: limit, now: now)
        } catch {
            logger.warning("the shared rate limit could not be read; this gateway applies it alone", metadata: ["error": "\(error)"])
            return await fallback.check(key: key, perMinute: limit)
        }
    }
}

/// The generic cell rate algorithm (GCRA), equivalent to a token bucket of `perMinute` refilled at
/// `perMinute` a minute, kept as one number per key: its "theoretical arrival time" (`tat`), when
/// the key's allowance would be whole again were it to make one more request. A request at `now` is
/// allowed while `max(tat, now) + interval - now <= burst`, and moves `tat` on by one interval.
struct RateCell: Sendable, Equatable {
    /// Microseconds between two requests at the steady rate (at least 1).
    let interval: Int64
    /// `perMinute` requests' worth of intervals: the most `tat` may run ahead of `now`.
    let burst: Int64

    /// A rate below one a minute is taken as one, as the in-process limiter takes it.
    init(perMinute: Int) {
        let rate = Int64(max(1, perMinute))
        interval = max(1, 60_000_000 / rate)
        burst = interval * rate
    }

    /// The decision, from the `tat` the statement left and whether it moved it.
    func decision(tat: Int64, allowed: Bool, now: Int64) -> RateDecision {
        if allowed { return .allowed(remaining: Int(max(0, (now + burst - tat) / interval))) }
        return .limited(retryAfter: Double(max(1, tat - now - (burst - interval))) / 1_000_000)
    }
}
