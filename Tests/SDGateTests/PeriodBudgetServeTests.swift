import Foundation
import TestSupport
import Testing

/// Budgets that renew, through `sdgate serve` with a fake Segmind upstream: set by the admin API
/// and the command line, shown by both, enforced on requests, and refused when out of range.
@Suite("Periodic budgets end to end", .serialized)
struct PeriodBudgetServeTests {
    static let bearer = ["-H", "Authorization: Bearer proxy-test-admin-token"]

    static func admin(_ gateway: ProxiedGateway, _ method: String, _ path: String, _ body: String? = nil) async throws -> (
        status: Int, body: [String: Any]
    ) {
        let answer = try await AdminAPITests.curl(
            bearer + ["-X", method] + (body.map { ["-d", $0] } ?? []) + ["http://127.0.0.1:\(gateway.port)/admin\(path)"])
        return (answer.status, answer.body as? [String: Any] ?? [:])
    }

    /// A key's or team's budget as the admin API shows it, its text fields (`rolling` as "true" or "false").
    static func budget(_ object: [String: Any], _ field: String = "period_budget") -> [String: String]? {
        (object[field] as? [String: Any])?.compactMapValues { ($0 as? String) ?? ($0 as? Bool).map { "\($0)" } }
    }

    @Test func aDailyBudgetCapsAKeyAndXRemainingCreditsShowsTheLeast() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await MoneyAbuseTests.start(upstream)
        // sdxl1.0-txt2img costs 0.008: the key has credits for 125 requests, a budget for two a day.
        let member = try await gateway.createKey(name: "daily", credits: "1")
        let set = try await Self.admin(
            gateway, "PUT", "/keys/\(member.id)/budget", #"{"per": "day", "amount": "0.02", "time_zone": "Europe/Paris"}"#)
        #expect(set.status == 200, "\(set.body)")
        #expect(Self.budget(set.body)?["left"] == "0.02" && Self.budget(set.body)?["time_zone"] == "Europe/Paris")
        #expect(Self.budget(set.body)?["rolling"] == "false")
        #expect(set.body["spendable"] as? String == "0.02" && set.body["available"] as? String == "1")

        let first = try await MoneyAbuseTests.post(gateway, member.secret, #"{"prompt": "a fox"}"#)
        #expect(first.status == 200 && first.headers.contains("x-remaining-credits: 0.012"), "\(first.headers)")
        let second = try await MoneyAbuseTests.post(gateway, member.secret, #"{"prompt": "a fox"}"#)
        #expect(second.status == 200 && second.headers.contains("x-remaining-credits: 0.004"), "\(second.headers)")
        // Over the day's budget: refused as Segmind refuses a key without credits, nothing moves.
        let refused = try await MoneyAbuseTests.post(gateway, member.secret, #"{"prompt": "a fox"}"#)
        #expect(refused.status == 406 && refused.headers.contains("x-remaining-credits: 0.004"), "\(refused)")
        #expect(try await gateway.credits(of: member.id) == ("0.984", "0"))
        let usage = try await MoneyAbuseTests.usage(gateway, of: member.id)
        // The refusal held nothing: it is counted under its minute's start, before or after the two.
        #expect(usage.compactMap { $0["status"] as? Int }.sorted() == [200, 200, 406], "\(usage)")
        #expect(usage.first { $0["status"] as? Int == 406 }?["cost"] as? String == "0", "\(usage)")

        let shown = try await Self.admin(gateway, "GET", "/keys/\(member.id)")
        #expect(Self.budget(shown.body)?["spent"] == "0.016" && Self.budget(shown.body)?["left"] == "0.004", "\(shown.body)")

        // The command line raises the amount: the day's spending stands, and one more request fits.
        let raised = try await gateway.command([
            "keys", "budget", member.id, "--per", "day", "--amount", "0.03", "--time-zone", "Europe/Paris", "--json",
        ])
        #expect(raised.status == 0, "\(raised.errors)")
        let raisedKey = try JSONSerialization.jsonObject(with: Data(raised.output.utf8)) as? [String: Any] ?? [:]
        #expect(Self.budget(raisedKey)?["left"] == "0.014" && raisedKey["spendable"] as? String == "0.014", "\(raisedKey)")
        let third = try await MoneyAbuseTests.post(gateway, member.secret, #"{"prompt": "a fox"}"#)
        #expect(third.status == 200 && third.headers.contains("x-remaining-credits: 0.006"), "\(third.headers)")
        let text = try await gateway.command(["keys", "show", member.id])
        #expect(text.output.contains("day budget 0.03 (Europe/Paris): spent 0.024, left 0.006"), "\(text.output)")

        // Usage by day in the budget's time zone: the day's four requests and what they cost.
        let byDay = try await Self.admin(gateway, "GET", "/usage?key=\(member.id)&by=day&time_zone=Europe/Paris")
        let days = (byDay.body["by_period"] as? [String: Any])?["periods"] as? [[String: Any]]
        #expect(days?.count == 1 && days?.first?["requests"] as? Int == 4 && days?.first?["cost"] as? String == "0.024", "\(byDay.body)")
        #expect(try await Self.admin(gateway, "GET", "/usage?by=year").status == 422)
        #expect(try await Self.admin(gateway, "GET", "/usage?by=day&time_zone=Mars/Olympus").status == 422)

        // Removed: the balance alone limits the key again.
        let removed = try await Self.admin(gateway, "DELETE", "/keys/\(member.id)/budget")
        #expect(removed.status == 200 && removed.body["period_budget"] == nil && removed.body["spendable"] as? String == "0.976")
        let fourth = try await MoneyAbuseTests.post(gateway, member.secret, #"{"prompt": "a fox"}"#)
        #expect(fourth.status == 200 && fourth.headers.contains("x-remaining-credits: 0.968"), "\(fourth.headers)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    @Test func aTeamsWeeklyBudgetIsSetShownAndCapsItsMembers() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await MoneyAbuseTests.start(upstream)
        let team = try await gateway.command(["teams", "create", "--name", "studio", "--credits", "10", "--json"])
        #expect(team.status == 0, "\(team.errors)")
        let budget = try await gateway.command(["teams", "budget", "studio", "--per", "week", "--amount", "0.008"])
        #expect(budget.status == 0 && budget.output.contains("week budget 0.008 (UTC): spent 0, left 0.008"), "\(budget.output)")
        let created = try await Self.admin(gateway, "POST", "/keys", #"{"name": "member", "credits": "1", "team": "studio"}"#)
        let secret = try #require(created.body["secret"] as? String)
        #expect(Self.budget(created.body, "team_period_budget")?["per"] == "week" && created.body["spendable"] as? String == "0.008")

        let first = try await MoneyAbuseTests.post(gateway, secret, #"{"prompt": "an owl"}"#)
        #expect(first.status == 200 && first.headers.contains("x-remaining-credits: 0"), "\(first.headers)")
        let refused = try await MoneyAbuseTests.post(gateway, secret, #"{"prompt": "an owl"}"#)
        #expect(refused.status == 406, "\(refused)")
        let shown = try await Self.admin(gateway, "GET", "/teams/studio")
        #expect(Self.budget(shown.body)?["spent"] == "0.008" && shown.body["spendable"] as? String == "0", "\(shown.body)")

        // Through the admin API: a month of 1 credit, then none.
        let monthly = try await Self.admin(gateway, "PUT", "/teams/studio/budget", #"{"per": "month", "amount": "1"}"#)
        #expect(monthly.status == 200 && Self.budget(monthly.body)?["spent"] == "0", "a new period counts anew: \(monthly.body)")
        // A rolling day counts what the last 24 hours spent, the week's request included.
        let rolling = try await gateway.command(["teams", "budget", "studio", "--per", "day", "--amount", "1", "--rolling"])
        #expect(rolling.status == 0 && rolling.output.contains("rolling day budget 1: spent 0.008, left 0.992"), "\(rolling.output)")
        let again = try await MoneyAbuseTests.post(gateway, secret, #"{"prompt": "an owl"}"#)
        #expect(again.status == 200 && again.headers.contains("x-remaining-credits: 0.984"), "\(again.headers)")
        let removed = try await Self.admin(gateway, "DELETE", "/teams/studio/budget")
        #expect(removed.status == 200 && removed.body["period_budget"] == nil)
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    @Test func budgetsOutOfRangeAreRefusedClearlyAndChangeNothing() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await MoneyAbuseTests.start(upstream)
        let member = try await gateway.createKey(name: "careful", credits: "1")
        #expect(try await Self.admin(gateway, "PUT", "/keys/\(member.id)/budget", #"{"per": "day", "amount": "0.5"}"#).status == 200)
        let refusals: [(body: String, field: String)] = [
            (#"{"per": "fortnight", "amount": "1"}"#, "per:"),
            (#"{"amount": "1"}"#, "per:"),
            (#"{"per": "day", "amount": "0"}"#, "amount:"),
            (#"{"per": "day", "amount": "-1"}"#, "amount:"),
            (#"{"per": "day", "amount": "1000000000000.000001"}"#, "amount:"),
            (#"{"per": "day", "amount": "99999999999999999999999"}"#, "amount:"),
            (#"{"per": "day", "amount": 5}"#, "amount:"),
            (#"{"per": "day", "amount": "1", "time_zone": "Mars/Olympus"}"#, "time_zone:"),
            (#"{"per": "day", "amount": "1", "time_zone": "GMT+1"}"#, "time_zone:"),
            (#"{"per": "day", "amount": "1", "rolling": "yes"}"#, "rolling:"),
            (#"{"per": "day", "amount": "1", "rolling": true, "time_zone": "Europe/Paris"}"#, "time_zone:"),
            ("not json", "expected a JSON object"),
        ]
        for refusal in refusals {
            let answer = try await Self.admin(gateway, "PUT", "/keys/\(member.id)/budget", refusal.body)
            #expect(answer.status == 422 && (answer.body["error"] as? String ?? "").hasPrefix(refusal.field), "\(refusal.body): \(answer)")
        }
        let unknown = try await Self.admin(gateway, "PUT", "/keys/k00000000/budget", #"{"per": "day", "amount": "1"}"#)
        #expect(unknown.status == 404 && unknown.body["error"] as? String == "no key 'k00000000'")
        #expect(try await Self.admin(gateway, "DELETE", "/teams/nobody/budget").status == 404)

        let commandRefusals: [(arguments: [String], says: String)] = [
            (["--per", "fortnight", "--amount", "1"], "fortnight"),
            (["--per", "day", "--amount", "0"], "the amount must be above zero"),
            (["--per", "day", "--amount", "-1"], "amount"),
            (["--per", "day", "--amount", "1", "--time-zone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
            (["--per", "day"], "give --per and --amount, or --remove"),
            (["--remove", "--per", "day"], "--remove takes neither --per, --amount, --time-zone nor --rolling"),
            (["--per", "day", "--amount", "1", "--rolling", "--time-zone", "Europe/Paris"], "a rolling budget has no time zone"),
        ]
        for refusal in commandRefusals {
            let result = try await gateway.command(["keys", "budget", member.id] + refusal.arguments)
            #expect(result.status != 0 && result.errors.contains(refusal.says), "\(refusal.arguments): \(result.errors)")
        }
        let unknownKey = try await gateway.command(["keys", "budget", "k00000000", "--per", "day", "--amount", "1"])
        #expect(unknownKey.status != 0 && unknownKey.errors.contains("no key 'k00000000'"), "\(unknownKey.errors)")

        // Nothing changed: the budget is the one first set, and the gateway still serves.
        let shown = try await Self.admin(gateway, "GET", "/keys/\(member.id)")
        #expect(Self.budget(shown.body)?["amount"] == "0.5" && Self.budget(shown.body)?["time_zone"] == "UTC", "\(shown.body)")
        let served = try await MoneyAbuseTests.post(gateway, member.secret, #"{"prompt": "still here"}"#)
        #expect(served.status == 200 && served.headers.contains("x-remaining-credits: 0.492"), "\(served.headers)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }
}

/// A daily budget on two `sdgate serve` processes sharing one PostgreSQL database, as two replicas.
@Suite("Periodic budgets across replicas", .serialized)
struct PeriodBudgetReplicaTests {
    @Test(.enabled(if: TestPostgres.url != nil))
    func twoServeProcessesNeverOverspendADailyBudget() async throws {
        let upstream = try FakeSegmindUpstream()
        let environment = try ProxiedGateway.environment(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]],
            base: ["SDGATE_LEDGER_DATABASE": try await TestPostgres.freshDatabase("period_budgets"), "SDGATE_ADMIN_TOKEN": "proxy-test-admin-token"])
        async let first = ProxiedGateway.start(environment: environment)
        async let second = ProxiedGateway.start(environment: environment)
        let replicas = try await [first, second]
        // Credits for 1,250 requests, a day's budget for fifty (sdxl1.0-txt2img costs 0.008).
        let key = try await replicas[0].createKey(name: "shared", credits: "10")
        let set = try await PeriodBudgetServeTests.admin(
            replicas[1], "PUT", "/keys/\(key.id)/budget", #"{"per": "day", "amount": "0.4", "time_zone": "Asia/Tokyo"}"#)
        #expect(set.status == 200, "\(set.body)")

        let ports = replicas.map { String($0.port) }.joined(separator: ",")
        let burst = try await Command.run("python3", [Repository.path("Tests/SDGateTests/Clients/burst.py"), ports, key.secret, "200"])
        #expect(burst.status == 0, "\(burst.errors)")
        let summary = try JSONSerialization.jsonObject(with: Data(burst.output.utf8)) as? [String: Any]
        #expect(summary?["statuses"] as? [String: Int] == ["200": 50, "406": 150])
        #expect(summary?["min_remaining"] as? Double == 0)
        let shown = try await PeriodBudgetServeTests.admin(replicas[0], "GET", "/keys/\(key.id)")
        #expect(PeriodBudgetServeTests.budget(shown.body)?["spent"] == "0.4" && shown.body["available"] as? String == "9.6", "\(shown.body)")
        for replica in replicas { #expect(try await replica.stop() == 0) }
        let verified = try await replicas[1].verify()
        #expect(verified.status == 0, "\(verified.output)\(verified.errors)")
        await upstream.shutdown()
    }
}
