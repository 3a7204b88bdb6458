public import GenerationCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A token bucket: `capacity` requests at once, refilled continuously at `capacity` per minute.
/// Pure: it is told the time, so tests drive it with any instants.
struct TokenBucket: Sendable, Equatable {
    let capacity: Double
    private(set) var tokens: Double
    private(set) var updatedAt: Double

    /// A rate below one a minute is taken as one: a bucket that never refills would divide by zero
    /// (the admin API and the command line refuse such a rate; an old database may still hold one).
    init(perMinute: Int, now: Double) {
        capacity = Double(max(1, perMinute))
        tokens = capacity
        updatedAt = now
    }

    private var refillPerSecond: Double { capacity / 60 }

    /// Takes one token if there is one; otherwise says how many seconds until there is.
    mutating func take(at now: Double) -> RateDecision {
        tokens = min(capacity, tokens + max(0, now - updatedAt) * refillPerSecond)
        updatedAt = max(updatedAt, now)
        if tokens >= 1 {
            tokens -= 1
            return .allowed(remaining: Int(tokens))
        }
        return .limited(retryAfter: (1 - tokens) / refillPerSecond)
    }
}

/// Per-key request rates, in this process: the limiter of a single gateway (a SQLite ledger), and
/// the fallback of the shared one while its database cannot be reached. Several gateways that each
/// used one would each apply the limit to what they see.
public final class RateLimiter: RateLimiting {
    private let buckets = Mutex<[String: TokenBucket]>([:])
    /// Seconds since 1970.
    public let now: @Sendable () -> Double

    public init(now: @escaping @Sendable () -> Double = RateLimiter.wallClockSeconds) {
        self.now = now
    }

    /// Wall-clock seconds: reset times are shown to clients as dates.
    public static let wallClockSeconds: @Sendable () -> Double = {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    public func check(key: String, perMinute limit: Int) -> RateDecision {
        let now = now()
        return buckets.withLock { buckets in
            var bucket = buckets[key].flatMap { $0.capacity == Double(max(1, limit)) ? $0 : nil } ?? TokenBucket(perMinute: limit, now: now)
            let decision = bucket.take(at: now)
            buckets[key] = bucket
            return decision
        }
    }
}
