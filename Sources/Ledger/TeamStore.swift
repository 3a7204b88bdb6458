/// Teams, whose budget their member keys share on top of their own. A team's credits are an
/// `Account` like a key's: `CreditStore` moves and reads both.
public protocol TeamStore: Sendable {
    /// Creates a team; names are unique.
    func createTeam(name: String) async throws(LedgerError) -> LedgerTeam
    func team(id: String) async throws(LedgerError) -> LedgerTeam?
    func teams() async throws(LedgerError) -> [LedgerTeam]
}

extension TeamStore {
    /// A team by its id or, failing that, by its name.
    public func team(idOrName reference: String) async throws(LedgerError) -> LedgerTeam? {
        if let team = try await team(id: reference) { return team }
        return try await teams().first { $0.name == reference }
    }
}

/// A team: its members' keys draw on its budget as well as on their own.
public struct LedgerTeam: Sendable, Equatable {
    public let id: String
    public let name: String
    public let createdAt: Timestamp
}
