import HTTPServer
import Ledger

/// `PUT` and `DELETE /admin/keys/{id}/budget` and `/admin/teams/{team}/budget`: a key's or a
/// team's periodic budget, set or changed by `{"per": "day", "amount": "10", "time_zone": "..."}`,
/// removed by `DELETE`. Both answer the key or team with its budget in the current period.
extension AdminRoutes {
    func setKeyBudget(_ request: HTTPRequest?, id: String) async -> HTTPResponse {
        await answer(.ok, with: Self.budget(in: request)) { budget in
            let balance = try await ledger.setBudget(budget, of: .key(id))
            guard let key = try await ledger.key(id: id) else { throw LedgerError.unknownKey(id) }
            return KeyReport(key, balance)
        }
    }

    func setTeamBudget(_ request: HTTPRequest?, team reference: String) async -> HTTPResponse {
        await answer(.ok, with: Self.budget(in: request)) { budget in
            guard let team = try await ledger.team(idOrName: reference) else { throw LedgerError.unknownTeam(reference) }
            _ = try await ledger.setBudget(budget, of: .team(team.id))
            return try await TeamReport.read(team, from: ledger)
        }
    }

    /// The budget a `PUT` sets, checked; nil (removal) for a `DELETE`, which has no body.
    private static func budget(in request: HTTPRequest?) -> Result<PeriodBudget?, AdminInput.Problem> {
        guard let request else { return .success(nil) }
        return AdminInput.budget(request.body).map { Optional($0) }
    }
}
