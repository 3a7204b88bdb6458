public import GenerationCore
import PostgresNIO

/// Teams, whose budget their member keys share on top of their own.
extension PostgresLedger {
    public func createTeam(name: String) async throws(LedgerError) -> LedgerTeam {
        let team = LedgerTeam(id: APIKeySecret.makeID(prefix: "t"), name: name, createdAt: now())
        let inserted = try await perform { client, logger in
            try await Self.first(client.query("""
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
            for try await (id, name, createdAt) in try await client.query("""
                SELECT id, name, created_at FROM team WHERE \(id)::TEXT IS NULL OR id = \(id) ORDER BY created_at, id
                """, logger: logger).decode((String, String, Int64).self) {
                teams.append(LedgerTeam(id: id, name: name, createdAt: createdAt))
            }
            return teams
        }
    }

    public func adjust(teamID: String, by amount: Credits, reason: String) async throws(LedgerError) -> Balance {
        try AdjustmentRule.check(amount)
        let micro = amount.microCredits, now = now(), kind = amount > .zero ? "topup" : "adjustment", maximum = Credits.maximum.microCredits
        return try await transaction { connection, logger in
            guard let balance = try await Self.first(connection.query("""
                UPDATE team SET balance = balance + \(micro) WHERE id = \(teamID) AND balance + \(micro) - held >= 0 AND balance + \(micro) <= \(maximum)
                RETURNING balance, held
                """, logger: logger), (Int64, Int64).self) else {
                let known = try await Self.first(connection.query("SELECT id FROM team WHERE id = \(teamID)", logger: logger), String.self)
                throw known == nil ? LedgerError.unknownTeam(teamID) : AdjustmentRule.refusal(of: amount)
            }
            try await connection.query("""
                INSERT INTO team_entry (team_id, kind, amount, reason, created_at) VALUES (\(teamID), \(kind), \(micro), \(reason), \(now))
                """, logger: logger)
            return Balance(balance: Credits(microCredits: balance.0), held: Credits(microCredits: balance.1))
        }
    }

    public func balance(teamID: String) async throws(LedgerError) -> Balance {
        guard let balance = try await perform({ client, logger in
            try await Self.first(client.query("SELECT balance, held FROM team WHERE id = \(teamID)", logger: logger), (Int64, Int64).self)
        }) else { throw .unknownTeam(teamID) }
        return Balance(balance: Credits(microCredits: balance.0), held: Credits(microCredits: balance.1))
    }
}
