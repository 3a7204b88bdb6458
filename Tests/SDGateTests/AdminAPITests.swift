import Foundation
import TestSupport
import Testing

/// The admin API through `sdgate serve`: the token generated on the first start, keys and credits
/// managed over HTTP, member keys kept out.
@Suite("Admin API", .serialized)
struct AdminAPITests {
    static func curl(_ arguments: [String]) async throws -> (status: Int, body: Any?) {
        let result = try await Command.run("curl", ["-sS", "-w", "\n%{http_code}"] + arguments)
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let body = lines.dropLast().joined(separator: "\n")
        return (status, try? JSONSerialization.jsonObject(with: Data(body.utf8)))
    }

    @Test func theFirstStartPrintsATokenThatManagesKeysAndMemberKeysAreRefused() async throws {
        let environment = try KeysCommandTests.environment()
        let gateway = try await RunningGateway.start(environment: environment)
        let token = try #require(gateway.log.firstRange(of: #/sdgadm_[A-Za-z0-9_-]{43}/#).map { String(gateway.log[$0]) })
        let admin = "http://127.0.0.1:\(gateway.port)/admin"
        let bearer = ["-H", "Authorization: Bearer \(token)"]

        let created = try await Self.curl(bearer + ["-d", #"{"name":"alice","credits":"2","models":["sdxl1.0-txt2img"]}"#, "\(admin)/keys"])
        #expect(created.status == 201)
        let key = try #require(created.body as? [String: Any])
        let id = try #require(key["id"] as? String), secret = try #require(key["secret"] as? String)

        let topped = try await Self.curl(bearer + ["-d", #"{"amount":"0.5","reason":"bonus"}"#, "\(admin)/keys/\(id)/credits"])
        #expect((topped.body as? [String: Any])?["available"] as? String == "2.5")
        let deducted = try await Self.curl(bearer + ["-d", #"{"amount":"-3","reason":"too much"}"#, "\(admin)/keys/\(id)/credits"])
        #expect(deducted.status == 422)

        // The member's key works on /v1 and nowhere under /admin/.
        let generation = try await Command.run(
            "curl",
            [
                "-sS", "-i", "-H", "x-api-key: \(secret)", "-H", "Content-Type: application/json",
                "-d", #"{"prompt":"x"}"#, "http://127.0.0.1:\(gateway.port)/v1/sdxl1.0-txt2img",
            ])
        #expect(generation.output.contains("x-remaining-credits: 2.5"))
        for credentials in [
            ["-H", "Authorization: Bearer \(secret)"], ["-H", "x-api-key: \(secret)"], ["-H", "Authorization: Bearer sdgadm_wrong"], [],
        ] {
            #expect(try await Self.curl(credentials + ["\(admin)/keys"]).status == 401, "\(credentials)")
        }

        let limited = try await Self.curl(bearer + ["-X", "PATCH", "-d", #"{"rate_limit_per_minute": 30, "models": null}"#, "\(admin)/keys/\(id)"])
        #expect((limited.body as? [String: Any])?["rate_limit_per_minute"] as? Int == 30)
        #expect((limited.body as? [String: Any])?["models"] == nil, "null removed the allow-list")
        #expect(try await Self.curl(bearer + ["-X", "PATCH", "-d", #"{"rate_limit_per_minute": "fast"}"#, "\(admin)/keys/\(id)"]).status == 422)

        let list = try await Self.curl(bearer + ["\(admin)/keys"])
        #expect((list.body as? [[String: Any]])?.map { $0["id"] as? String } == [id])
        #expect((list.body as? [[String: Any]])?.first?["secret"] == nil)
        let usage = try await Self.curl(bearer + ["\(admin)/usage?key=\(id)"])
        #expect((usage.body as? [String: Any])?["total_requests"] as? Int == 1)
        let revoked = try await Self.curl(bearer + ["-X", "POST", "\(admin)/keys/\(id)/revoke"])
        #expect((revoked.body as? [String: Any])?["revoked_at"] != nil)
        #expect(try await Self.curl(bearer + ["\(admin)/keys/knobody"]).status == 404)
        #expect(try await gateway.stop(signal: SIGTERM) == 0)

        // The next start shows no token, and the first one still holds.
        let again = try await RunningGateway.start(environment: environment)
        #expect(!again.log.contains("sdgadm_"))
        #expect(try await Self.curl(["-H", "Authorization: Bearer \(token)", "http://127.0.0.1:\(again.port)/admin/keys"]).status == 200)
        #expect(try await again.stop(signal: SIGTERM) == 0)
    }

    @Test func aConfiguredTokenIsUsedAndNoneIsGenerated() async throws {
        var environment = try KeysCommandTests.environment()
        environment["SDGATE_ADMIN_TOKEN"] = "correct horse battery staple"
        let gateway = try await RunningGateway.start(environment: environment)
        #expect(!gateway.log.contains("sdgadm_"))
        #expect(
            try await Self.curl(["-H", "Authorization: Bearer correct horse battery staple", "http://127.0.0.1:\(gateway.port)/admin/keys"]).status
                == 200)
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
        let check = try await RunningGateway.run(["config", "check"], environment: environment)
        #expect(check.output.contains("admin.token: (set, redacted)"))
        #expect(!check.output.contains("battery"))
    }
}
