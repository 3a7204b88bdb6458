import Foundation
import TestSupport
import Testing

/// ModelsLab as its users call it today: the v6 image endpoints through ModelsLab's own SDK
/// (`modelslab-py`), and v3 and v6 answers that typed clients can parse (integer ids and seeds).
@Suite("ModelsLab v6")
struct ModelsLabV6Tests {
    static func client(_ gateway: ProxiedGateway, _ secret: String, _ arguments: [String]) async throws -> Command.Result {
        try await Command.run(
            "python3", [Repository.path("Tests/SDGateTests/Clients/modelslab_sdk.py"), "\(gateway.port)", secret] + arguments)
    }

    @Test func theSDKGeneratesEditsAndFetchesEachChargedAsItsModel() async throws {
        let (gateway, upstream) = try await OpenAITests.start(routes: ["sdxl1.0-txt2img", "sd1.5-img2img"])
        let member = try await gateway.createKey(name: "alice", credits: "1")
        let result = try await Self.client(gateway, member.secret, ["sdk", "sdxl", "1024", "sd-1.5"])
        #expect(result.status == 0 && result.output == "modelslab: sdk ok\n", "\(result.output)\(result.errors)")
        let asked = upstream.received.map(\.json)
        #expect(asked.count == 2, "\(asked)")
        #expect(asked.first?["seed"] as? Int == 12345 && asked.first?["num_inference_steps"] as? Int == 20)
        #expect(asked.last?["strength"] as? Double == 0.5)
        let usage = try await gateway.usage()
        #expect(usage.map { $0["model"] as? String } == ["sdxl1.0-txt2img", "sd1.5-img2img"], "\(usage)")
        #expect(usage.map { $0["cost"] as? String } == ["0.0064", "0.004"], "20 of 25 steps at 0.008; 20 of 20 at 0.004")
        #expect(usage.allSatisfy { $0["dialect"] as? String == "modelslab" })
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
    }

    @Test func v3AndV6AnswersParseWithIntegerIdsAndSeeds() async throws {
        let (gateway, _) = try await OpenAITests.start()
        let member = try await gateway.createKey(name: "bob", credits: "1")
        let result = try await Self.client(gateway, member.secret, ["typed", "success"])
        #expect(result.status == 0 && result.output == "modelslab: typed ok\n", "\(result.output)\(result.errors)")
        #expect(try await gateway.stop() == 0)
    }

    @Test func processingAnswersParseToo() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: "jobs:\n  wait: 200ms\n")
        upstream.misbehave(.wait)
        let member = try await gateway.createKey(name: "carol", credits: "1")
        let result = try await Self.client(gateway, member.secret, ["typed", "processing"])
        #expect(result.status == 0 && result.output == "modelslab: typed ok\n", "\(result.output)\(result.errors)")
        upstream.misbehave(nil)
        #expect(try await gateway.stop() == 0)
    }
}

extension ModelsLabV6Tests {
    /// Every bad-input class of v6 is ModelsLab's error (HTTP 200, `status: error`, `message` and
    /// `messege`), nothing reaches the upstream, no credit moves, and the gateway goes on serving.
    @Test func badV6InputIsModelsLabsErrorAndChargesNothing() async throws {
        let (gateway, upstream) = try await OpenAITests.start()
        let member = try await gateway.createKey(name: "mallory", credits: "1")
        let result = try await Self.client(gateway, member.secret, ["bad"])
        #expect(result.status == 0 && result.output == "modelslab: bad ok\n", "\(result.output)\(result.errors)")
        #expect(upstream.received.isEmpty)
        #expect(try await gateway.credits(of: member.id) == ("1", "0"))
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
    }
}
