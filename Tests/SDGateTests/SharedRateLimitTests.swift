import Foundation
import TestSupport
import Testing

/// One rate limit per key, whichever API a request comes through: a key limited to N a minute gets
/// N in total across Segmind v1 and v2, ModelsLab v3 and v6, OpenAI and A1111, each refusal in its
/// dialect's own shape with its own headers.
@Suite("One rate limit per key across dialects")
struct SharedRateLimitTests {
    /// `Clients/rate_burst.py`: `count` requests at once, over `ports` and every dialect.
    static func burst(ports: [Int], secret: String, count: Int) async throws -> RateBurst {
        let result = try await Command.run(
            "python3",
            [Repository.path("Tests/SDGateTests/Clients/rate_burst.py"), ports.map(String.init).joined(separator: ","), secret, "\(count)"])
        #expect(result.status == 0, "\(result.errors)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
        return RateBurst(
            allowed: object["allowed"] as? [String: Int] ?? [:], limited: object["limited"] as? [String: Int] ?? [:],
            other: object["other"] as? [String] ?? ["unreadable: \(result.output)"], headersOK: object["headers_ok"] as? Bool == true,
            seconds: object["seconds"] as? Double ?? 0, after: object["after"] as? [String: String] ?? [:])
    }

    @Test func aKeyLimitedToTenAMinuteGetsTenInTotalAcrossEveryDialect() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: "jobs:\n  wait: 0s\n")
        let key = try await gateway.createKey(name: "rita", credits: "10", perMinute: 10)
        let burst = try await Self.burst(ports: [gateway.port], secret: key.secret, count: 60)
        #expect(burst.other.isEmpty, "\(burst.other)")
        #expect(burst.allowedCount == 10 && burst.limitedCount == 50, "\(burst)")
        #expect(burst.after == Dictionary(uniqueKeysWithValues: RateBurst.dialects.map { ($0, "limited") }), "every dialect refuses: \(burst)")
        #expect(burst.headersOK, "every refusal carries its dialect's rate-limit headers")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }
}

/// What `Clients/rate_burst.py` saw, by dialect.
struct RateBurst: CustomStringConvertible {
    let allowed: [String: Int]
    let limited: [String: Int]
    let other: [String]
    let headersOK: Bool
    /// From the first request sent to the last answer: the limit refills one request every 60/N seconds.
    let seconds: Double
    /// The verdict on one request in each dialect sent after the burst, once the limit is spent.
    let after: [String: String]

    static let dialects = ["v1", "v2", "v3", "v6", "openai", "a1111"]

    var allowedCount: Int { allowed.values.reduce(0, +) }
    var limitedCount: Int { limited.values.reduce(0, +) }
    var description: String { "allowed \(allowed), limited \(limited), in \(seconds)s, then \(after)" }
}

extension ProxiedGateway {
    /// A member key funded with `credits` and limited to `perMinute` requests a minute.
    func createKey(name: String, credits: String, perMinute: Int) async throws -> (id: String, secret: String) {
        let created = try await command(["keys", "create", "--name", name, "--credits", credits, "--rate-limit", "\(perMinute)", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any]
        return (try #require(object?["id"] as? String, "\(created.errors)"), try #require(object?["secret"] as? String))
    }
}
