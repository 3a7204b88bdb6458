import Foundation
import GenerationCore
import HTTPServer
import Ledger

/// `/admin/teams`: teams, whose budget their member keys share on top of their own.
/// A `{team}` in a path is the team's id or its name.
extension AdminRoutes {
    func registerTeams(on router: inout Router) {
        add(.post, "/admin/teams", maxBodyBytes: 64 * 1024, to: &router) { request, _ in await createTeam(request) }
        add(.get, "/admin/teams", to: &router) { _, _ in await listTeams() }
        add(.get, "/admin/teams/{team}", to: &router) { _, parameters in await showTeam(parameters["team"] ?? "") }
        add(.post, "/admin/teams/{team}/credits", maxBodyBytes: 64 * 1024, to: &router) { request, parameters in
            await adjustTeamCredits(request, team: parameters["team"] ?? "")
        }
        add(.put, "/admin/teams/{team}/budget", maxBodyBytes: 64 * 1024, to: &router) { request, parameters in
            await setTeamBudget(request, team: parameters["team"] ?? "")
        }
        add(.delete, "/admin/teams/{team}/budget", to: &router) { _, parameters in await setTeamBudget(nil, team: parameters["team"] ?? "") }
    }

    private func createTeam(_ request: HTTPRequest) async -> HTTPResponse {
        await answer(.created, with: AdminInput.newTeam(request.body)) { body in
            let team = try await ledger.createTeam(name: body.name)
            if let amount = body.credits, amount > .zero { _ = try await ledger.adjust(.team(team.id), by: amount, reason: "initial credits") }
            return try await TeamReport.read(team, from: ledger)
        }
    }

    private func listTeams() async -> HTTPResponse {
        await answer(.ok) {
            let keys = try await ledger.keys()
            var reports: [TeamReport] = []
            for team in try await ledger.teams() { reports.append(TeamReport(team, try await ledger.balance(of: .team(team.id)), keys: keys)) }
            return reports
        }
    }

    private func showTeam(_ reference: String) async -> HTTPResponse {
        await answer(.ok) { try await TeamReport.read(try await team(reference), from: ledger) }
    }

    /// `{"amount": "50", "reason": "..."}` adds to the team's budget; a negative amount deducts.
    private func adjustTeamCredits(_ request: HTTPRequest, team reference: String) async -> HTTPResponse {
        await answer(.ok, with: AdminInput.adjustment(request.body)) { body in
            let team = try await team(reference)
            _ = try await ledger.adjust(.team(team.id), by: body.amount, reason: body.reason)
            return try await TeamReport.read(team, from: ledger)
        }
    }

    private func team(_ reference: String) async throws(LedgerError) -> LedgerTeam {
        guard let team = try await ledger.team(idOrName: reference) else { throw .unknownTeam(reference) }
        return team
    }
}
