public import GenerationCore
import GRDB

/// Teams, whose budget their member keys share on top of their own.
extension SQLiteLedger {
    public func createTeam(name: String) async throws(LedgerError) -> LedgerTeam {
        let team = LedgerTeam(id: APIKeySecret.makeID(prefix: "t"), name: name, createdAt: now())
        try await write { db in
            try db.execute(sql: "INSERT INTO team (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                           arguments: [team.id, name, team.createdAt])
            if db.changesCount == 0 { throw LedgerError.teamExists(name) }
        }
        return team
    }

    public func team(id: String) async throws(LedgerError) -> LedgerTeam? {
        try await read { db in try Self.teamRow(db, id).map(Self.team(from:)) }
    }

    public func teams() async throws(LedgerError) -> [LedgerTeam] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM team ORDER BY created_at, id").map(Self.team(from:)) }
    }

    public func adjust(teamID: String, by amount: Credits, reason: String) async throws(LedgerError) -> Balance {
        try AdjustmentRule.check(amount)
        return try await write { db in
            try db.execute(sql: "UPDATE team SET balance = balance + ? WHERE id = ? AND balance + ? - held >= 0 AND balance + ? <= ?",
                           arguments: [amount.microCredits, teamID, amount.microCredits, amount.microCredits, Credits.maximum.microCredits])
            guard db.changesCount == 1 else {
                throw try Self.teamRow(db, teamID) == nil ? LedgerError.unknownTeam(teamID) : AdjustmentRule.refusal(of: amount)
            }
            try db.execute(sql: "INSERT INTO team_entry (team_id, kind, amount, reason, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [teamID, amount > .zero ? "topup" : "adjustment", amount.microCredits, reason, self.now()])
            return Self.teamBalance(try Self.teamRow(db, teamID)!)
        }
    }

    public func balance(teamID: String) async throws(LedgerError) -> Balance {
        guard let balance = try await read({ db in try Self.teamRow(db, teamID).map(Self.teamBalance) }) else { throw .unknownTeam(teamID) }
        return balance
    }

    static func teamRow(_ db: Database, _ id: String) throws -> Row? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM team WHERE id = ?"), arguments: [id])
    }

    private static func team(from row: Row) -> LedgerTeam {
        LedgerTeam(id: row["id"], name: row["name"], createdAt: row["created_at"])
    }

    private static func teamBalance(_ row: Row) -> Balance {
        Balance(balance: Credits(microCredits: row["balance"]), held: Credits(microCredits: row["held"]))
    }
}
