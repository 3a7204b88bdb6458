import Foundation
public import Ledger

/// A key as the command line and the admin API show it; never its secret, except once at creation.
public struct KeyReport: Encodable, Sendable {
    let id: String
    let name: String
    let created_at: String
    let expires_at: String?
    let revoked_at: String?
    let models: [String]?
    let rate_limit_per_minute: Int?
    let balance: String
    let held: String
    let available: String
    public var secret: String?

    public init(_ key: LedgerKey, _ balance: Balance, secret: String? = nil) {
        id = key.id
        name = key.name
        created_at = Self.date(key.createdAt)
        expires_at = key.expiresAt.map(Self.date)
        revoked_at = key.revokedAt.map(Self.date)
        models = key.models
        rate_limit_per_minute = key.rateLimitPerMinute
        self.balance = balance.balance.description
        held = balance.held.description
        available = balance.available.description
        self.secret = secret
    }

    public static func date(_ timestamp: Timestamp) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(timestamp) / 1000))
    }

    public var line: String {
        let state = revoked_at != nil ? "revoked" : expires_at.map { "expires \($0)" } ?? "active"
        return "\(id)  \(name)  available \(available) (balance \(balance), held \(held))  \(state)"
    }
}
