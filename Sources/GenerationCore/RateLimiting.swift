/// Per-key request rates: `perMinute` requests at once, refilled continuously at `perMinute` a
/// minute. One value is shared by every dialect of a gateway, so a key's rate is per key whichever
/// API it calls. The in-process one (a token bucket) serves a single gateway; gateways sharing a
/// PostgreSQL ledger keep the rate in the database, so that it holds across replicas.
public protocol RateLimiting: Sendable {
    /// Seconds since 1970 as this limiter reckons them: a refusal's reset time is now plus its wait.
    var now: @Sendable () -> Double { get }
    /// Takes one request from the key's allowance, or says how long until there is one.
    func check(key: String, perMinute limit: Int) async -> RateDecision
}

public enum RateDecision: Sendable, Equatable {
    case allowed(remaining: Int)
    /// Seconds until the next request would be allowed.
    case limited(retryAfter: Double)
}
