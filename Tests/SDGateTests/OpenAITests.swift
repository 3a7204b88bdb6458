import Foundation
import TestSupport
import Testing

/// OpenAI's Images API on `sdgate serve`, driven by the official `openai` Python SDK unmodified
/// (only its base URL changed), in front of a fake Segmind upstream.
@Suite("OpenAI Images API")
struct OpenAITests {
    /// A gateway whose `routes` go to a fake Segmind upstream.
    static func start(routes: [String] = ["sdxl1.0-txt2img", "sdxl-img2img"]) async throws -> (ProxiedGateway, FakeSegmindUpstream) {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: Dictionary(uniqueKeysWithValues: routes.map { ($0, ["segmind"]) }))
        return (gateway, upstream)
    }

    static func sdk(_ gateway: ProxiedGateway, _ secret: String, _ mode: String, _ arguments: [String] = []) async throws -> Command.Result {
        try await Command.run(
            "python3", [Repository.path("Tests/SDGateTests/Clients/openai_sdk.py"), "\(gateway.port)", secret, mode] + arguments)
    }

    @Test func theSDKGeneratesEditsAndVariesImagesAndEachIsChargedAsItsModel() async throws {
        let (gateway, upstream) = try await Self.start()
        let member = try await gateway.createKey(name: "alice", credits: "1")
        let result = try await Self.sdk(gateway, member.secret, "images", ["1792x1024"])
        #expect(result.status == 0 && result.output == "openai sdk: images ok\n", "\(result.output)\(result.errors)")

        // What the upstream was asked: OpenAI's size as SDXL's size of the same shape; `n` as samples.
        let asked = upstream.received.map(\.json)
        #expect(asked.count == 4, "two generations, an edit, a variation")
        let first = asked.first ?? [:]
        #expect(first["img_width"] as? Int == 1344, "\(first)")
        #expect(first["img_height"] as? Int == 768, "\(first)")
        #expect(first["samples"] as? Int == 2, "\(first)")
        let variation = asked.last ?? [:]
        #expect((variation["prompt"] as? String)?.isEmpty == false, "a variation runs with the catalog's prompt")

        // Each charged as its catalog model: 2 + 1 txt2img images at 0.008, two img2img at 0.02.
        let usage = try await gateway.usage()
        #expect(usage.map { $0["model"] as? String } == ["sdxl1.0-txt2img", "sdxl1.0-txt2img", "sdxl-img2img", "sdxl-img2img"])
        #expect(usage.map { $0["cost"] as? String } == ["0.016", "0.008", "0.02", "0.02"], "\(usage)")
        #expect(try await gateway.credits(of: member.id).available == "0.936")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
    }

    @Test func everyRefusalIsTheSDKsOwnExceptionAndChargesNothing() async throws {
        let (gateway, upstream) = try await Self.start()
        let member = try await gateway.createKey(name: "bob", credits: "1")
        let result = try await Self.sdk(gateway, member.secret, "errors")
        #expect(result.status == 0 && result.output == "openai sdk: errors ok\n", "\(result.output)\(result.errors)")
        #expect(upstream.received.isEmpty, "no refused request reached the upstream")
        #expect(try await gateway.credits(of: member.id) == ("1", "0"))

        // Credits: 429 insufficient_quota, which the SDK does not retry.
        let poor = try await gateway.createKey(name: "poor", credits: "0.001")
        let refused = try await Self.sdk(gateway, poor.secret, "poor")
        #expect(refused.status == 0, "\(refused.output)\(refused.errors)")
        #expect(upstream.received.isEmpty)
        let tries = try await gateway.usage().filter { $0["key_id"] as? String == poor.id }
        // Answered 429, recorded as the report's one status for "no credits" in every dialect.
        #expect(tries.map { $0["status"] as? Int } == [406], "the SDK, with its default retries, asked once: \(tries)")

        // Rate: 429 rate_limit_exceeded with the rate-limit headers.
        let created = try await gateway.command(["keys", "create", "--name", "slow", "--credits", "1", "--rate-limit", "1", "--json"])
        let slow = try #require(try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any])
        let limited = try await Self.sdk(gateway, try #require(slow["secret"] as? String), "limited")
        #expect(limited.status == 0, "\(limited.output)\(limited.errors)")
        #expect(upstream.received.count == 1, "only the first call of the limited key ran")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
    }
}

extension OpenAITests {
    /// Every bad-input class of the OpenAI and A1111 dialects, sent raw: each answered in its
    /// dialect's shape, nothing reaches the upstream, no credit moves, and the gateway goes on serving.
    @Test func badInputOfTheNewDialectsIsRefusedInTheirShapeAndChargesNothing() async throws {
        let (gateway, upstream) = try await Self.start()
        let member = try await gateway.createKey(name: "mallory", credits: "1")
        let result = try await Command.run("python3", [Repository.path("Tests/SDGateTests/Clients/bad_input.py"), "\(gateway.port)", member.secret])
        #expect(result.status == 0 && result.output.hasPrefix("bad input: "), "\(result.output)\(result.errors)")
        #expect(upstream.received.isEmpty)
        #expect(try await gateway.credits(of: member.id) == ("1", "0"))
        let images = try await Self.sdk(gateway, member.secret, "images", ["1024x1024"])
        #expect(images.status == 0, "still serving: \(images.output)\(images.errors)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
    }
}
