import PostgresNIO

/// Teams, whose budget their member keys share on top of their own.
extension PostgresLedger {
    public func createTeam(name: String) async throws(LedgerError) -> LedgerTeam {
        let team = LedgerTeam(id: APIKeySecret.makeID(prefix: "t"), name: name, createdAt: now())
        let inserted = try await perform { client, logger in
            try await Self.first(
                client.query(
                    """
                    INSERT INTO team (id, name, created_at) VALUES (\(team.id), \(name), \(team.createdAt)) ON CONFLICT (name) DO NOTHING RETURNING id
                    """, logger: logger), String.self)
        }
        guard inserted != nil else { throw .teamExists(name) }
        return team
    }

    public func team(id: String) async throws(LedgerError) -> LedgerTeam? {
        try await teamRows(id: id).first
    }

    public func teams() async throws(LedgerError) -> [LedgerTeam] {
        try await teamRows(id: nil)
    }

    private func teamRows(id: String?) async throws(LedgerError) -> [LedgerTeam] {
        try await perform { client, logger in
            var teams: [LedgerTeam] = []
            for try await (id, name, createdAt) in try await client.query(
                """
                SELECT id, name, created_at FROM team WHERE \(id)::TEXT IS NULL OR id = \(id) ORDER BY created_at, id
                """, logger: logger
            ).decode((String, String, Int64).self) {
                teams.append(LedgerTeam(id: id, name: name, createdAt: createdAt))
            }
            return teams
        }
    }
}
