import Foundation
import GenerationCore
import TestSupport
import Testing

/// ModelsLab v3 through `sdgate serve`: a client written like ModelsLab's examples calls the
/// gateway, whose route sends the model to a fake Segmind upstream, so a v3 request is served by
/// the other API family; the image comes back through the gateway's own output store.
@Suite("ModelsLab v3 through sdgate serve", .serialized)
struct ModelsLabServeTests {
    @Test func aV3CallIsServedByASegmindUpstreamAndItsImageByTheGateway() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]])
        let member = try await gateway.createKey(name: "vera", credits: "1")
        let client = Repository.path("Tests/SDGateTests/Clients/modelslab_client.py")
        let body = #"{"key": "\#(member.secret)", "prompt": "a lighthouse", "width": "512", "height": "512", "samples": "1", "seed": "7"}"#
        let call = try await Command.run("python3", [client, "post", "http://127.0.0.1:\(gateway.port)/api/v3/text2img", "json", body])
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(call.output.utf8)) as? [String: Any], "\(call.errors)")
        let v3 = try #require(answer["body"] as? [String: Any])
        #expect(answer["http"] as? Int == 200 && v3["status"] as? String == "success", "\(v3)")
        let url = try #require((v3["output"] as? [String])?.first)
        #expect(url.hasPrefix("http://127.0.0.1:\(gateway.port)/generations/"))

        let download = try await Command.run("python3", [client, "download", url])
        let file = try JSONSerialization.jsonObject(with: Data(download.output.utf8)) as? [String: Any]
        let bytes = Array(Data(base64Encoded: file?["base64"] as? String ?? "") ?? Data())
        #expect(file?["http"] as? Int == 200 && ImageInspector.inspect(bytes) != nil, "an image, as the upstream made it")

        // Revoked by another process while the gateway may still remember the key: refused all the
        // same, as an invalid key, and nothing reaches the upstream.
        #expect(try await gateway.command(["keys", "revoke", member.id]).status == 0)
        let refused = try await Command.run("python3", [client, "post", "http://127.0.0.1:\(gateway.port)/api/v3/text2img", "json", body])
        let refusal = try JSONSerialization.jsonObject(with: Data(refused.output.utf8)) as? [String: Any]
        #expect((refusal?["body"] as? [String: Any])?["message"] as? String == "Invalid Api Key", "\(refused.output)")

        #expect(upstream.received.map(\.path) == ["/v1/sdxl1.0-txt2img"])
        #expect(upstream.received.first?.json["seed"] as? Int == 7)
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        #expect(!gateway.log.contains(member.secret) && !gateway.log.contains(upstream.key))
        await upstream.shutdown()
    }
}
