import Foundation
import TestSupport
import Testing

/// AUTOMATIC1111's API on `sdgate serve`, called as the popular tools call it, in front of a fake
/// Segmind upstream.
@Suite("AUTOMATIC1111 API")
struct A1111Tests {
    static func client(_ gateway: ProxiedGateway, _ secret: String, _ mode: String, _ arguments: [String] = []) async throws -> Command.Result {
        try await Command.run(
            "python3", [Repository.path("Tests/SDGateTests/Clients/a1111_client.py"), "\(gateway.port)", secret, mode] + arguments)
    }

    @Test func aClientListsPicksAndGeneratesAndEachCallIsChargedAsItsModel() async throws {
        let (gateway, upstream) = try await OpenAITests.start(routes: ["sdxl1.0-txt2img", "sd1.5-img2img"])
        let member = try await gateway.createKey(name: "alice", credits: "1")
        let result = try await Self.client(gateway, member.secret, "flow")
        #expect(result.status == 0 && result.output == "a1111: flow ok\n", "\(result.output)\(result.errors)")

        let asked = upstream.received.map(\.json)
        #expect(asked.count == 2, "the img2img and the txt2img; no refusal reached the upstream")
        let img2img = asked.first ?? [:]
        #expect(img2img["scheduler"] as? String == "Euler a" && img2img["guidance_scale"] as? Double == 7, "\(img2img)")
        #expect(img2img["strength"] as? Double == 0.6 && img2img["num_inference_steps"] as? Int == 25, "\(img2img)")
        let txt2img = asked.last ?? [:]
        #expect(txt2img["scheduler"] as? String == "DPM Multi" && txt2img["samples"] as? Int == 2, "\(txt2img)")
        let usage = try await gateway.usage().filter { $0["status"] as? Int == 200 }
        #expect(usage.map { $0["model"] as? String } == ["sd1.5-img2img", "sdxl1.0-txt2img"])
        #expect(usage.map { $0["cost"] as? String } == ["0.005", "0.016"], "sd1.5 at 25 of 20 default steps; two SDXL images")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
    }

    @Test func progressShowsTheKeysOwnGenerationWhileItRuns() async throws {
        let (gateway, upstream) = try await OpenAITests.start()
        let member = try await gateway.createKey(name: "bob", credits: "1")
        let other = try await gateway.createKey(name: "carol", credits: "1")
        upstream.misbehave(.wait)
        let signal = Scratch.path("a1111").path
        let client = Task { try await Self.client(gateway, member.secret, "progress", [signal]) }
        #expect(await eventually(timeout: .seconds(60)) { FileManager.default.fileExists(atPath: signal) }, "progress never showed the job")
        // Another key sees nothing of it.
        let theirs = try await Command.run("curl", ["-s", "-u", "x:\(other.secret)", "http://127.0.0.1:\(gateway.port)/sdapi/v1/progress"])
        let state = (try JSONSerialization.jsonObject(with: Data(theirs.output.utf8)) as? [String: Any])?["state"] as? [String: Any]
        #expect(state?["job_count"] as? Int == 0, "\(theirs.output)")
        #expect(upstream.answerOne())
        let result = try await client.value
        #expect(result.status == 0 && result.output == "a1111: progress ok\n", "\(result.output)\(result.errors)")
        #expect(try await gateway.stop() == 0)
    }
}
