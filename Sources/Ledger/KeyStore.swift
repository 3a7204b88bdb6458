/// API keys: who may use the gateway, with which models, how fast and until when.
public protocol KeyStore: Sendable {
    /// Creates a key; the secret is returned once and only its SHA-256 is stored.
    func createKey(_ key: NewKey) async throws(LedgerError) -> (key: LedgerKey, secret: String)
    /// The key a secret belongs to, compared in constant time; nil for an unknown secret.
    func key(secret: String) async throws(LedgerError) -> LedgerKey?
    func key(id: String) async throws(LedgerError) -> LedgerKey?
    func keys() async throws(LedgerError) -> [LedgerKey]
    func revoke(keyID: String) async throws(LedgerError)
    /// Replaces a key's limits: its model allow-list, rate limit and expiry (nil: none).
    func setLimits(keyID: String, models: [String]?, rateLimitPerMinute: Int?, expiresAt: Timestamp?) async throws(LedgerError) -> LedgerKey
}

public struct NewKey: Sendable {
    public var name: String
    public var expiresAt: Timestamp?
    /// The models this key may use; nil for all.
    public var models: [String]?
    public var rateLimitPerMinute: Int?
    /// The team whose budget the key also draws on.
    public var teamID: String?

    public init(name: String, expiresAt: Timestamp? = nil, models: [String]? = nil, rateLimitPerMinute: Int? = nil, teamID: String? = nil) {
        self.name = name
        self.expiresAt = expiresAt
        self.models = models
        self.rateLimitPerMinute = rateLimitPerMinute
        self.teamID = teamID
    }
}

public struct LedgerKey: Sendable, Equatable {
    public let id: String
    public let name: String
    public let createdAt: Timestamp
    public let expiresAt: Timestamp?
    public let revokedAt: Timestamp?
    public let models: [String]?
    public let rateLimitPerMinute: Int?
    public let teamID: String?

    public func isUsable(at now: Timestamp) -> Bool {
        Self.isUsable(revokedAt: revokedAt, expiresAt: expiresAt, at: now)
    }

    static func isUsable(revokedAt: Timestamp?, expiresAt: Timestamp?, at now: Timestamp) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}

/// The ranges a key's limits must lie in, checked by the admin API and the command line before
/// any arithmetic on them.
public enum KeyLimits {
    /// A request a minute at the least (a rate of zero would never refill), a million at the most.
    public static let requestsPerMinute: ClosedRange<Int> = 1...1_000_000
    /// Up to a hundred years.
    public static let lifetimeDays: ClosedRange<Int> = 1...36_500

    /// When a key given `days` to live at `now` expires: `days` is clamped to `lifetimeDays`, so the
    /// arithmetic stays far inside 64 bits whatever the caller checked.
    public static func expiry(days: Int, from now: Timestamp) -> Timestamp {
        now + Int64(min(max(days, lifetimeDays.lowerBound), lifetimeDays.upperBound)) * 86_400_000
    }

    /// Longer text than this is refused: names and reasons are labels, not documents.
    public static let maxTextLength = 200

    /// Why a name or a reason given on the command line is refused, as the admin API refuses it;
    /// nil when it is fine.
    public static func problem(text: String, option: String) -> String? {
        if text.isEmpty { return "\(option) must not be empty" }
        if text.utf8.count > maxTextLength { return "\(option) must be at most \(maxTextLength) bytes" }
        return nil
    }

    /// Why a rate limit or a lifetime given on the command line is refused; nil when both are in range.
    public static func problem(rateLimit: Int?, lifetimeDays days: Int?) -> String? {
        if let rateLimit, !requestsPerMinute.contains(rateLimit) {
            return "--rate-limit must be from \(requestsPerMinute.lowerBound) to \(requestsPerMinute.upperBound)"
        }
        if let days, !lifetimeDays.contains(days) {
            return "--expires-in-days must be from \(lifetimeDays.lowerBound) to \(lifetimeDays.upperBound)"
        }
        return nil
    }
}
