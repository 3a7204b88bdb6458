import GRDB

/// Teams, whose budget their member keys share on top of their own.
extension SQLiteLedger {
    public func createTeam(name: String) async throws(LedgerError) -> LedgerTeam {
        let team = LedgerTeam(id: APIKeySecret.makeID(prefix: "t"), name: name, createdAt: now())
        try await write { db in
            try db.execute(
                sql: "INSERT INTO team (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
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

    static func teamRow(_ db: Database, _ id: String) throws -> Row? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM team WHERE id = ?"), arguments: [id])
    }

    private static func team(from row: Row) -> LedgerTeam {
        LedgerTeam(id: row["id"], name: row["name"], createdAt: row["created_at"])
    }
}
