import Foundation
package import Ledger

/// A key as the command line and the admin API show it; never its secret, except once at creation.
package struct KeyReport: Encodable, Sendable {
    let id: String
    let name: String
    let created_at: String
    let expires_at: String?
    let revoked_at: String?
    let models: [String]?
    let rate_limit_per_minute: Int?
    let team_id: String?
    let balance: String
    let held: String
    let available: String
    /// For a member of a team: what the team has available, which also caps what the key can spend.
    let team_available: String?
    /// The key's periodic budget in its current period, and its team's.
    let period_budget: PeriodReport?
    let team_period_budget: PeriodReport?
    /// What the key can spend now: the least of its available credits, its team's and what is left
    /// of either's periodic budget (`x-remaining-credits`).
    let spendable: String
    package var secret: String?
    /// The secret its webhooks are signed with (Standard Webhooks `whsec_...`), shown with one key.
    package var webhook_secret: String?

    package init(_ key: LedgerKey, _ balance: Balance, secret: String? = nil) {
        id = key.id
        name = key.name
        created_at = Self.date(key.createdAt)
        expires_at = key.expiresAt.map(Self.date)
        revoked_at = key.revokedAt.map(Self.date)
        models = key.models
        rate_limit_per_minute = key.rateLimitPerMinute
        team_id = key.teamID
        self.balance = balance.balance.description
        held = balance.held.description
        available = balance.available.description
        team_available = balance.teamAvailable?.description
        period_budget = balance.period.map(PeriodReport.init)
        team_period_budget = balance.teamPeriod.map(PeriodReport.init)
        spendable = balance.spendable.description
        self.secret = secret
    }

    /// One key, shown in full: with its webhook signing secret (made on first use).
    package static func full(_ key: LedgerKey, in ledger: any GatewayStorage) async throws -> KeyReport {
        var report = KeyReport(key, try await ledger.balance(of: .key(key.id)))
        report.webhook_secret = try await ledger.webhookSecret(keyID: key.id)
        return report
    }

    package var detail: String {
        line + (webhook_secret.map { "\nwebhook secret: \($0)" } ?? "")
    }

    package static func date(_ timestamp: Timestamp) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(timestamp) / 1000))
    }

    package var line: String {
        let state = revoked_at != nil ? "revoked" : expires_at.map { "expires \($0)" } ?? "active"
        let team = team_id.map { "  team \($0) (available \(team_available ?? "?"))" } ?? ""
        let budgets = [period_budget.map { "  \($0.text)" }, team_period_budget.map { "  team \($0.text)" }].compactMap { $0 }.joined()
        return "\(id)  \(name)  available \(available) (balance \(balance), held \(held))\(team)\(budgets)  \(state)"
    }
}
