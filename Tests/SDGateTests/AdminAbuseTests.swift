import Foundation
import GenerationCore
import TestSupport
import Testing

/// Numbers an admin (or a script with the admin token) can get wrong, through the real
/// `sdgate serve`: each is refused with a 422 that names the field, no credit moves, the gateway
/// keeps serving and the ledger still verifies. Each of these once ended the process.
@Suite("Admin input abuse", .serialized)
struct AdminAbuseTests {
    struct Admin {
        let gateway: RunningGateway
        let token: String
        var base: String { "http://127.0.0.1:\(gateway.port)" }

        func call(_ method: String, _ path: String, _ body: String? = nil) async throws -> (status: Int, body: [String: Any]) {
            var arguments = ["-X", method, "-H", "Authorization: Bearer \(token)"]
            if let body { arguments += ["-H", "Content-Type: application/json", "-d", body] }
            let answer = try await AdminAPITests.curl(arguments + ["\(base)\(path)"])
            return (answer.status, answer.body as? [String: Any] ?? [:])
        }
    }

    static func start(_ environment: [String: String]) async throws -> Admin {
        var environment = environment
        environment["SDGATE_ADMIN_TOKEN"] = "abuse-test-admin-token"
        return Admin(gateway: try await RunningGateway.start(environment: environment), token: "abuse-test-admin-token")
    }

    @Test func outOfRangeNumbersAreRefusedByNameAndMoveNothing() async throws {
        let environment = try KeysCommandTests.environment()
        let admin = try await Self.start(environment)
        let key = try await admin.call("POST", "/admin/keys", #"{"name": "alice", "credits": "999999999999"}"#)
        #expect(key.status == 201)
        let id = try #require(key.body["id"] as? String)
        #expect(try await admin.call("POST", "/admin/teams", #"{"name": "design", "credits": "5"}"#).status == 201)

        let refusals: [(method: String, path: String, body: String?, field: String)] = [
            ("POST", "/admin/keys", #"{"name": "bob", "rate_limit_per_minute": 0}"#, "rate_limit_per_minute"),
            ("POST", "/admin/keys", #"{"name": "bob", "rate_limit_per_minute": -5}"#, "rate_limit_per_minute"),
            ("POST", "/admin/keys", #"{"name": "bob", "credits": "9223372036854.999999"}"#, "credits"),
            ("POST", "/admin/keys", #"{"name": "bob", "credits": "1000000000000.000001"}"#, "credits"),
            ("POST", "/admin/keys", #"{"name": "bob", "expires_in_days": 100000000000000000}"#, "expires_in_days"),
            ("POST", "/admin/keys", #"{"name": "bob", "expires_in_days": 1e300}"#, "expires_in_days"),
            ("POST", "/admin/teams", #"{"name": "big", "credits": "9223372036854.999999"}"#, "credits"),
            ("PATCH", "/admin/keys/\(id)", #"{"rate_limit_per_minute": 0}"#, "rate_limit_per_minute"),
            ("PATCH", "/admin/keys/\(id)", #"{"rate_limit_per_minute": true}"#, "rate_limit_per_minute"),
            ("PATCH", "/admin/keys/\(id)", #"{"expires_in_days": 100000000000000000}"#, "expires_in_days"),
            // A comma would split one name into two once stored: the allow-list would widen.
            ("POST", "/admin/keys", #"{"name": "bob", "models": ["sdxl-img2img,sd1.5-img2img"]}"#, "models"),
            ("PATCH", "/admin/keys/\(id)", #"{"models": ["sdxl-img2img,sd1.5-img2img"]}"#, "models"),
            ("POST", "/admin/keys/\(id)/credits", #"{"amount": "9223372036854.999999", "reason": "x"}"#, "amount"),
            ("POST", "/admin/keys/\(id)/credits", #"{"amount": "0x19", "reason": "x"}"#, "amount"),
            ("POST", "/admin/teams/design/credits", #"{"amount": "-9223372036854.999999", "reason": "x"}"#, "amount"),
            ("GET", "/admin/usage?since=999999999999999d", nil, "999999999999999d"),
            ("GET", "/admin/usage/series?since=9223372036854775807m&step=1d", nil, "9223372036854775807m"),
            ("GET", "/admin/usage/series?since=0001-01-01&until=9999-12-31&step=1d", nil, "0001-01-01"),
        ]
        for refusal in refusals {
            let answer = try await admin.call(refusal.method, refusal.path, refusal.body)
            #expect(answer.status == 422, "\(refusal)")
            #expect((answer.body["error"] as? String)?.contains(refusal.field) == true, "\(refusal): \(answer.body)")
        }

        // A top-up that would take a balance past the most an account may hold is refused as such,
        // for a key and for a team, and both balances stay as they were.
        let pastMaximum = try await admin.call("POST", "/admin/keys/\(id)/credits", #"{"amount": "1000", "reason": "one too many"}"#)
        #expect(pastMaximum.status == 422)
        #expect((pastMaximum.body["error"] as? String)?.contains("at most 1000000000000 credits") == true, "\(pastMaximum.body)")
        #expect(try await admin.call("POST", "/admin/teams/design/credits", #"{"amount": "1000000000000", "reason": "x"}"#).status == 422)
        #expect(try await admin.call("GET", "/admin/keys/\(id)").body["balance"] as? String == "999999999999")
        #expect(try await admin.call("GET", "/admin/teams/design").body["balance"] as? String == "5")
        #expect(try await admin.call("POST", "/admin/keys/\(id)/credits", #"{"amount": "1", "reason": "up to the maximum"}"#).status == 200)

        #expect(try await Command.run("curl", ["-sf", "\(admin.base)/health"]).status == 0, "the gateway still serves")
        #expect(try await admin.gateway.stop(signal: SIGTERM) == 0)
        let verify = try await RunningGateway.run(["ledger", "verify"], environment: environment)
        #expect(verify.status == 0, "\(verify.output)\(verify.errors)")
    }

    /// A window of 200,000 usage events (as refusals were written before they were counted, an
    /// event each, thousands a second) written straight into the SQLite file: the report
    /// lists only the latest requests, at most 1,000 however many are asked for, and its totals,
    /// summed by the store, count every one. The gateway reads no more than that: its peak resident
    /// memory stays within its baseline + 64 MiB (it once read every event of the window, and a
    /// report without a limit answered them all).
    @Test func aWindowOfManyUsageEventsIsAnsweredFromTotalsTheStoreSums() async throws {
        let environment = try KeysCommandTests.environment()
        let admin = try await Self.start(environment)
        var keys: [String] = []
        for name in ["flood", "quiet"] {
            keys.append(try #require(try await admin.call("POST", "/admin/keys", #"{"name": "\#(name)"}"#).body["id"] as? String))
        }
        let count = 200_000, now = Int64(Date().timeIntervalSince1970 * 1000)
        // Event i: 10 ms before event i - 1, of key i % 2, through segmind when i % 3 == 0, costing (i % 7) thousandths.
        func key(_ i: Int) -> String { keys[i % 2] }
        func dialect(_ i: Int) -> String { i % 3 == 0 ? "segmind" : "openai" }
        func cost(_ i: Int) -> Int64 { Int64(i % 7) * 1_000 }
        let insert = """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(count))
            INSERT INTO usage_event (key_id, model, dialect, status, cost, duration_ms, backend, request_id, at)
            SELECT CASE i % 2 WHEN 0 THEN '\(keys[0])' ELSE '\(keys[1])' END, 'sdxl1.0-txt2img',
                   CASE i % 3 WHEN 0 THEN 'segmind' ELSE 'openai' END, 406, (i % 7) * 1000, 1, 'segmind', 'r' || i, \(now) - i * 10
            FROM n
            """
        let database = try #require(environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        let inserted = try await Command.run("sqlite3", [database, insert])
        #expect(inserted.status == 0, "\(inserted.errors)")

        func sum(_ events: some Sequence<Int>) -> (requests: Int, cost: String) {
            var requests = 0, micro: Int64 = 0
            for i in events {
                requests += 1
                micro += cost(i)
            }
            return (requests, Credits(microCredits: micro).description)
        }
        let events = 1...count
        let pid = admin.gateway.process.processIdentifier
        let baseline = try ServerAbuseTests.residentBytes(of: pid)

        let latest = try await admin.call("GET", "/admin/usage?since=24h&limit=50")
        #expect(latest.status == 200, "\(latest.body)")
        let requests = try #require(latest.body["requests"] as? [[String: Any]])
        #expect(requests.map { $0["request_id"] as? String } == (1...50).reversed().map { "r\($0)" }, "the latest 50, oldest first")
        #expect(latest.body["total_requests"] as? Int == count)
        #expect(latest.body["total_cost"] as? String == sum(events).cost)
        let byKey = try #require(latest.body["by_key"] as? [[String: Any]])
        #expect(byKey.map { $0["key_id"] as? String } == keys.sorted())
        for total in byKey {
            let expected = sum(events.filter { key($0) == total["key_id"] as? String })
            #expect(total["requests"] as? Int == expected.requests && total["cost"] as? String == expected.cost, "\(total)")
        }
        let byDialect = try #require(latest.body["by_dialect"] as? [[String: Any]])
        #expect(byDialect.map { $0["dialect"] as? String } == ["openai", "segmind"])
        for total in byDialect {
            let expected = sum(events.filter { dialect($0) == total["dialect"] as? String })
            #expect(total["requests"] as? Int == expected.requests && total["cost"] as? String == expected.cost, "\(total)")
        }

        let unlimited = try await admin.call("GET", "/admin/usage?since=24h")
        #expect((unlimited.body["requests"] as? [Any])?.count == 1_000, "at most 1,000 requests in one answer")
        #expect(unlimited.body["total_requests"] as? Int == count)
        let tooMany = try await admin.call("GET", "/admin/usage?limit=1001")
        #expect(tooMany.status == 422 && (tooMany.body["error"] as? String)?.contains("limit") == true, "\(tooMany.body)")
        let series = try await admin.call("GET", "/admin/usage/series?since=7d&step=1d")
        let seriesByKey = try #require(series.body["by_key"] as? [[String: Any]])
        #expect(seriesByKey.flatMap { $0["requests"] as? [Int] ?? [] }.reduce(0, +) == count)

        let peak = try ServerAbuseTests.peakResidentBytes(of: pid)
        #expect(peak < baseline + (64 << 20), "peak resident \(peak >> 20) MiB, from \(baseline >> 20) MiB")
        print("resident memory: \(baseline >> 20) MiB before the reports, peak \(peak >> 20) MiB")
        #expect(try await Command.run("curl", ["-sf", "\(admin.base)/health"]).status == 0)
        #expect(try await admin.gateway.stop(signal: SIGTERM) == 0)
    }

    /// A usage report by period over eight thousand years would be millions of periods (seconds of
    /// work, hundreds of MB, millions of bound parameters on PostgreSQL): more than a series' 1,000
    /// steps is a 422 naming the parameters, known from the window before any period is built, in
    /// every time zone and for every period. A thousand days exactly are answered.
    @Test func aUsageReportOfMorePeriodsThanASeriesHoldsIsRefusedBeforeTheyAreBuilt() async throws {
        let environment = try KeysCommandTests.environment()
        let admin = try await Self.start(environment)
        let refused = [
            "since=1970-01-01&until=9999-12-31&by=day", "since=1970-01-01&until=9999-12-31&by=week",
            "since=1970-01-01&until=9999-12-31&by=month&time_zone=Europe/Paris", "since=1970-01-01&until=2060-01-01&by=month",
            // One day past the thousand.
            "since=2000-01-01&until=2002-09-27T00:00:01Z&by=day",
            "since=2000-01-01T00:00:00Z&until=2002-09-27T00:00:00Z&by=day&time_zone=Europe/Paris",
        ]
        for query in refused {
            let started = ContinuousClock.now
            let answer = try await admin.call("GET", "/admin/usage?\(query)")
            let took = ContinuousClock.now - started
            #expect(answer.status == 422, "\(query): \(answer.body)")
            let error = answer.body["error"] as? String ?? ""
            #expect(["since", "until", "by", "more than 1000"].allSatisfy(error.contains), "\(query): \(error)")
            // Far below building millions (seconds), far above a request's cost under the suite's load.
            #expect(took < .seconds(5), "\(query): \(took)")
        }
        // 2000-01-01 to 2002-09-27: 366 + 365 + 269 days.
        let thousand = try await admin.call("GET", "/admin/usage?since=2000-01-01&until=2002-09-27&by=day")
        #expect(thousand.status == 200, "\(thousand.body)")
        #expect((thousand.body["by_period"] as? [String: Any])?["per"] as? String == "day", "\(thousand.body)")
        #expect(try await admin.call("GET", "/admin/usage?since=1970-01-01&until=9999-12-31").status == 200, "without by, no periods")
        #expect(try await admin.gateway.stop(signal: SIGTERM) == 0)
    }

    /// A filter with a malformed percent escape is a 422 that names it: it was dropped, and
    /// `?team=%ZZ` answered every key's usage as if asked for the team's.
    @Test func aMalformedPercentEscapeInAUsageFilterIsRefusedNotDropped() async throws {
        let environment = try KeysCommandTests.environment()
        let admin = try await Self.start(environment)
        #expect(try await admin.call("POST", "/admin/teams", #"{"name": "design studio"}"#).status == 201)
        let refusals = [
            ("/admin/usage?key=%ZZ", "key"), ("/admin/usage?team=%ZZ", "team"), ("/admin/usage?limit=%ZZ", "limit"),
            ("/admin/usage?since=24h&team=design%", "team"), ("/admin/usage?by=day&time_zone=Europe%2", "time_zone"),
            ("/admin/usage/series?team=%ZZ&step=1d", "team"), ("/admin/usage/series?step=1d&key=%G1", "key"),
        ]
        for (path, name) in refusals {
            let answer = try await admin.call("GET", path)
            #expect(answer.status == 422, "\(path): \(answer.body)")
            #expect((answer.body["error"] as? String)?.hasPrefix("\(name): malformed percent escape") == true, "\(path): \(answer.body)")
        }
        // Well-formed escapes still filter: the team's name with a space, as %20 or +.
        for path in ["/admin/usage?team=design%20studio", "/admin/usage?team=design+studio", "/admin/usage/series?team=design%20studio"] {
            #expect(try await admin.call("GET", path).status == 200, "\(path)")
        }
        #expect(try await admin.call("GET", "/admin/usage?team=design%20office").status == 404, "another team is not found, not every key")
        #expect(try await admin.gateway.stop(signal: SIGTERM) == 0)
    }

    /// Ten requests each charged the most an account may hold (an extreme catalog price, the key
    /// topped up again each time) cost more together than Int64 micro-credits hold: the report, its
    /// periods, its series and `sdgate usage` add them exactly. The sum once trapped, ending the
    /// gateway (and `sdgate usage` with it).
    @Test func usageCostingMoreThanInt64HoldsIsTotalledExactly() async throws {
        let environment = try KeysCommandTests.environment()
        let admin = try await Self.start(environment)
        let id = try #require(try await admin.call("POST", "/admin/keys", #"{"name": "lavish"}"#).body["id"] as? String)
        let count = 10, at = Int64(Date().timeIntervalSince1970 * 1000) - 1_000
        let insert = """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(count))
            INSERT INTO usage_event (key_id, model, dialect, status, cost, duration_ms, backend, request_id, at)
            SELECT '\(id)', 'sdxl1.0-txt2img', 'segmind', 200, \(Credits.maximum.microCredits), 1, 'segmind', 'r' || i, \(at) FROM n
            """
        let database = try #require(environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        let inserted = try await Command.run("sqlite3", [database, insert])
        #expect(inserted.status == 0, "\(inserted.errors)")
        // The maximum is whole credits: ten of them, in whole credits, fit an Int.
        let expected = "\(count * Int(Credits.maximum.microCredits / 1_000_000))"

        let report = try await admin.call("GET", "/admin/usage?since=24h&by=day")
        #expect(report.status == 200, "\(report.body)")
        #expect(report.body["total_cost"] as? String == expected && report.body["total_requests"] as? Int == count, "\(report.body)")
        #expect((report.body["by_key"] as? [[String: Any]])?.map { $0["cost"] as? String } == [expected])
        #expect((report.body["by_dialect"] as? [[String: Any]])?.map { $0["cost"] as? String } == [expected])
        let periods = (report.body["by_period"] as? [String: Any])?["periods"] as? [[String: Any]]
        #expect(periods?.map { $0["cost"] as? String } == [expected], "\(String(describing: periods))")
        let series = try await admin.call("GET", "/admin/usage/series?since=24h&step=1h")
        let costs = (series.body["by_key"] as? [[String: Any]])?.first?["cost"] as? [String]
        #expect(costs?.filter { $0 != "0" } == [expected], "\(series.body)")

        let command = try await RunningGateway.run(["usage", "--json"], environment: environment)
        #expect(command.status == 0, "\(command.errors)")
        #expect((try? KeysCommandTests.json(command.output) as? [String: Any])?["total_cost"] as? String == expected, "\(command.output)")
        #expect(try await Command.run("curl", ["-sf", "\(admin.base)/health"]).status == 0, "the gateway still serves")
        #expect(try await admin.gateway.stop(signal: SIGTERM) == 0)
    }

    /// A rate of zero stored before the admin API refused it (or written by hand) is taken as one a
    /// minute: the key's requests are answered, the second one 429, and the limit is the key's
    /// across both dialects (each dialect once kept its own count).
    @Test func aStoredRateLimitOfZeroIsAnsweredNotATrap() async throws {
        let environment = try KeysCommandTests.environment()
        let created = try await RunningGateway.run(
            ["keys", "create", "--name", "zero", "--credits", "5", "--rate-limit", "1", "--json"],
            environment: environment)
        let key = try #require(try KeysCommandTests.json(created.output) as? [String: Any])
        let id = try #require(key["id"] as? String), secret = try #require(key["secret"] as? String)
        let database = try #require(environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        let update = try await Command.run("sqlite3", [database, "UPDATE api_key SET rate_limit_per_minute = 0 WHERE id = '\(id)'"])
        #expect(update.status == 0, "\(update.errors)")
        let admin = try await Self.start(environment)

        var statuses: [Int] = []
        for _ in 0..<2 {
            let segmind = try await AdminAPITests.curl([
                "-H", "x-api-key: \(secret)", "-H", "Content-Type: application/json",
                "-d", #"{"prompt": "x"}"#, "\(admin.base)/v1/sdxl1.0-txt2img",
            ])
            statuses.append(segmind.status)
        }
        #expect(statuses.last == 429, "\(statuses)")
        let modelsLab = try await AdminAPITests.curl([
            "-H", "Content-Type: application/json", "-d", #"{"key": "\#(secret)", "prompt": "x"}"#,
            "\(admin.base)/api/v3/text2img",
        ])
        #expect((modelsLab.body as? [String: Any])?["message"] as? String == "Rate limit exceeded", "\(String(describing: modelsLab.body))")
        #expect(try await Command.run("curl", ["-sf", "\(admin.base)/health"]).status == 0)
        #expect(try await admin.gateway.stop(signal: SIGTERM) == 0)
    }
}
