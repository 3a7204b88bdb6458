import Foundation
import TestSupport
import Testing

/// One catalog, one ledger, four dialects: the same image costs the same whichever API asks for it,
/// and a key's credits bound its images across all of them at once.
@Suite("Metering across dialects")
struct DialectMeteringTests {
    static func burst(_ gateway: ProxiedGateway, _ secret: String, each count: Int) async throws -> [String: [String: Int]] {
        let result = try await Command.run(
            "python3", [Repository.path("Tests/SDGateTests/Clients/dialect_burst.py"), "\(gateway.port)", secret, "\(count)"])
        #expect(result.status == 0, "\(result.errors)")
        return try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: [String: Int]] ?? [:]
    }

    @Test func theSameRequestCostsTheSameInEveryDialectAndIsOneUsageRowNamingIt() async throws {
        let (gateway, upstream) = try await OpenAITests.start()
        let member = try await gateway.createKey(name: "alice", credits: "1")
        let statuses = try await Self.burst(gateway, member.secret, each: 0)
        #expect(statuses == ["segmind": ["200": 1], "openai": ["200": 1], "a1111": ["200": 1]], "\(statuses)")
        // The upstream was asked the same thing three times.
        let asked = upstream.received.map { request in
            request.json.filter { $0.key != "seed" }.mapValues { "\($0)" }
        }
        #expect(asked.count == 3 && Set(asked).count == 1, "\(asked)")
        let usage = try await gateway.usage()
        #expect(usage.map { $0["dialect"] as? String } == ["segmind", "openai", "a1111"], "\(usage)")
        #expect(usage.map { $0["cost"] as? String } == ["0.008", "0.008", "0.008"], "\(usage)")
        #expect(usage.allSatisfy { $0["model"] as? String == "sdxl1.0-txt2img" })
        #expect(try await gateway.credits(of: member.id).available == "0.976")
        #expect(try await gateway.stop() == 0)
    }

    @Test func aKeyFundedForNImagesGetsExactlyNAcrossABurstInThreeDialects() async throws {
        let (gateway, _) = try await OpenAITests.start()
        // Five images at 0.008; fifteen asked for at once, five in each dialect.
        let member = try await gateway.createKey(name: "bob", credits: "0.04")
        let statuses = try await Self.burst(gateway, member.secret, each: 5)
        let successes = statuses.values.reduce(0) { $0 + ($1["200"] ?? 0) }
        #expect(successes == 5, "\(statuses)")
        // Every refusal is its dialect's "no credits": Segmind 406, OpenAI 429, A1111 402.
        for (dialect, refusal) in [("segmind", "406"), ("openai", "429"), ("a1111", "402")] {
            let counts = statuses[dialect] ?? [:]
            #expect(counts.keys.allSatisfy { $0 == "200" || $0 == refusal } && counts.values.reduce(0, +) == 5, "\(dialect): \(counts)")
        }
        let left = try await gateway.credits(of: member.id)
        #expect(left.available == "0" && left.held == "0", "\(left)")
        let charged = try await gateway.usage().filter { $0["status"] as? Int == 200 }
        #expect(charged.count == 5 && charged.allSatisfy { $0["cost"] as? String == "0.008" })
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
    }
}
