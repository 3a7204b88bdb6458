import Foundation
import TestSupport
import Testing

/// Teams through `sdgate teams` and `/admin/teams`: a member key spends its own credits and its
/// team's, and usage is reported per team with totals per key.
@Suite("Teams", .serialized)
struct TeamsTests {
    @Test func teamsOnTheCommandLine() async throws {
        let environment = try KeysCommandTests.environment()
        func run(_ arguments: [String]) async throws -> (status: Int32, value: Any?, errors: String) {
            let result = try await RunningGateway.run(arguments, environment: environment)
            return (result.status, try? KeysCommandTests.json(result.output), result.errors)
        }
        let created = try await run(["teams", "create", "--name", "design", "--credits", "1", "--json"])
        #expect(created.status == 0, "\(created.errors)")
        let teamID = try #require((created.value as? [String: Any])?["id"] as? String)
        #expect(try await run(["teams", "create", "--name", "design"]).errors.contains("a team named 'design' exists already"))

        // By name or by id.
        let key = try await run(["keys", "create", "--name", "ann", "--credits", "5", "--team", "design", "--json"])
        let member = try #require(key.value as? [String: Any])
        let memberID = try #require(member["id"] as? String)
        #expect(member["team_id"] as? String == teamID && member["team_available"] as? String == "1")
        #expect(try await run(["keys", "create", "--name", "x", "--team", "nobody"]).errors.contains("no team 'nobody'"))

        let topped = try await run(["teams", "topup", teamID, "2", "--reason", "quarter", "--json"])
        #expect((topped.value as? [String: Any])?["available"] as? String == "3")
        let deducted = try await run(["teams", "deduct", "design", "0.5", "--reason", "correction", "--json"])
        #expect((deducted.value as? [String: Any])?["available"] as? String == "2.5")
        #expect(try await run(["teams", "deduct", "design", "9", "--reason", "too much"]).status != 0)

        let shown = try #require(try await run(["teams", "show", "design", "--json"]).value as? [String: Any])
        #expect(shown["keys"] as? [String] == [memberID])
        let listed = try await run(["teams", "list", "--json"])
        #expect((listed.value as? [[String: Any]])?.map { $0["name"] as? String } == ["design"])

        let usage = try await run(["usage", "--team", "design", "--since", "7d", "--json"])
        #expect((usage.value as? [String: Any])?["total_requests"] as? Int == 0, "\(usage.errors)")
        let badPeriod = try await run(["usage", "--since", "last tuesday"])
        #expect(badPeriod.status != 0 && badPeriod.errors.contains("expected a time back from now"))
        #expect(try await run(["ledger", "verify"]).status == 0)
    }

    @Test func aTeamBudgetCapsItsMembersThroughTheAdminAPI() async throws {
        var environment = try KeysCommandTests.environment()
        environment["SDGATE_ADMIN_TOKEN"] = "team-test-admin-token"
        let gateway = try await RunningGateway.start(environment: environment)
        let base = "http://127.0.0.1:\(gateway.port)"
        let bearer = ["-H", "Authorization: Bearer team-test-admin-token"]

        // sdxl1.0-txt2img costs 0.008: the team can pay for one request, its member for many.
        let team = try await AdminAPITests.curl(bearer + ["-d", #"{"name":"video","credits":"0.01"}"#, "\(base)/admin/teams"])
        #expect(team.status == 201)
        let teamID = try #require((team.body as? [String: Any])?["id"] as? String)
        #expect(try await AdminAPITests.curl(bearer + ["-d", #"{"name":"video"}"#, "\(base)/admin/teams"]).status == 409)
        #expect(try await AdminAPITests.curl(bearer + ["-d", #"{"name":"x","team":"nobody"}"#, "\(base)/admin/keys"]).status == 404)
        let key = try await AdminAPITests.curl(bearer + ["-d", #"{"name":"vic","credits":"5","team":"video"}"#, "\(base)/admin/keys"])
        let member = try #require(key.body as? [String: Any])
        let secret = try #require(member["secret"] as? String), keyID = try #require(member["id"] as? String)

        func generate() async throws -> String {
            try await Command.run(
                "curl",
                [
                    "-sS", "-i", "-H", "x-api-key: \(secret)", "-H", "Content-Type: application/json",
                    "-d", #"{"prompt":"x"}"#, "\(base)/v1/sdxl1.0-txt2img",
                ]
            ).output
        }
        // What the key can spend is what its team has left. (The binary has no backend: the held
        // credits come back with the 503.)
        let first = try await generate()
        #expect(first.hasPrefix("HTTP/1.1 503") && first.contains("x-remaining-credits: 0.01"), "\(first)")
        _ = try await AdminAPITests.curl(bearer + ["-d", #"{"amount":"-0.005","reason":"cut"}"#, "\(base)/admin/teams/\(teamID)/credits"])
        let refused = try await generate()
        #expect(refused.hasPrefix("HTTP/1.1 406") && refused.contains("x-remaining-credits: 0.005"), "\(refused)")

        let shown = try await AdminAPITests.curl(bearer + ["\(base)/admin/teams/video"])
        #expect((shown.body as? [String: Any])?["available"] as? String == "0.005")
        #expect((shown.body as? [String: Any])?["keys"] as? [String] == [keyID])
        let usage = try #require(try await AdminAPITests.curl(bearer + ["\(base)/admin/usage?team=video&since=1h"]).body as? [String: Any])
        #expect(usage["total_requests"] as? Int == 2)
        #expect((usage["by_key"] as? [[String: Any]])?.first?["key_id"] as? String == keyID)
        #expect(try await AdminAPITests.curl(bearer + ["\(base)/admin/usage?since=soon"]).status == 422)
        #expect(try await AdminAPITests.curl(["-H", "x-api-key: \(secret)", "\(base)/admin/teams"]).status == 401)
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
        #expect(try await RunningGateway.run(["ledger", "verify"], environment: environment).status == 0)
    }
}
