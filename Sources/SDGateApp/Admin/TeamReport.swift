package import Ledger

/// A team as the command line and the admin API show it.
package struct TeamReport: Encodable, Sendable {
    let id: String
    let name: String
    let created_at: String
    let balance: String
    let held: String
    let available: String
    /// The team's periodic budget in its current period.
    let period_budget: PeriodReport?
    /// What its members can spend together now: its available credits or what is left of its
    /// periodic budget, the less.
    let spendable: String
    /// The ids of its member keys.
    let keys: [String]

    package init(_ team: LedgerTeam, _ balance: Balance, keys: [LedgerKey]) {
        id = team.id
        name = team.name
        created_at = KeyReport.date(team.createdAt)
        self.balance = balance.balance.description
        held = balance.held.description
        available = balance.available.description
        period_budget = balance.period.map(PeriodReport.init)
        spendable = balance.spendable.description
        self.keys = keys.filter { $0.teamID == team.id }.map(\.id)
    }

    /// Reads the team's balance and members.
    package static func read(_ team: LedgerTeam, from ledger: any Ledger) async throws(LedgerError) -> TeamReport {
        TeamReport(team, try await ledger.balance(of: .team(team.id)), keys: try await ledger.keys())
    }

    package var keysText: String { keys.map { "  key \($0)" }.joined(separator: "\n") }

    package var line: String {
        "\(id)  \(name)  available \(available) (balance \(balance), held \(held))\(period_budget.map { "  \($0.text)" } ?? "")  \(keys.count) keys"
    }
}
