import Foundation
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
        let environment = KeysCommandTests.environment()
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

    /// A rate of zero stored before the admin API refused it (or written by hand) is taken as one a
    /// minute: the key's requests are answered, the second one 429, and the limit is the key's
    /// across both dialects (each dialect once kept its own count).
    @Test func aStoredRateLimitOfZeroIsAnsweredNotATrap() async throws {
        let environment = KeysCommandTests.environment()
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
