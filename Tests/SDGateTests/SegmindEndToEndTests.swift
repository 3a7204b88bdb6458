import Foundation
import GenerationCore
import HTTPServer
import Logging
import TestSupport
import Testing

@testable import SDGateApp

/// The whole gateway in-process (configuration, routes, logging) with a backend that lives in the
/// tests, driven by the clients people use: the official `segmind` SDK and Node's `fetch`.
@Suite("Segmind end to end")
struct SegmindEndToEndTests {
    static func start(backend: FakeBackend) throws -> (HTTPServer, Int) {
        var configuration = GatewayConfiguration()
        configuration.server.host = "127.0.0.1"
        configuration.server.port = 0
        configuration.catalogFile = Repository.path("Config/models.yaml")
        let app = GatewayApp(configuration: configuration, logger: Logger(label: "test"), gate: TestGate(), backend: backend)
        let server = try app.makeServer()
        return (server, try server.start().port)
    }

    static func sdk(_ port: Int, _ mode: String) async throws -> Command.Result {
        try await Command.run("python3", [Repository.path("Tests/SDGateTests/Clients/segmind_sdk.py"), "\(port)", TestGate.key, mode])
    }

    @Test func theSegmindSDKGetsAnImageFromEachModel() async throws {
        let backend = FakeBackend()
        let (server, port) = try Self.start(backend: backend)
        let result = try await Self.sdk(port, "images")
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output == "segmind sdk: images ok\n")
        // What the backend was asked, dialect-free.
        let first = try #require(backend.requests.first)
        #expect(first.model == "sd1.5-img2img")
        #expect(first.family == .sd15)
        #expect(first.seed == 98_877_465_625)
        #expect(first.steps == 25)
        #expect(first.image?.info == ImageInfo(format: .png, width: 640, height: 480))
        #expect((first.width, first.height) == (512, 512))
        let sd3 = try #require(backend.requests.first { $0.model == "sd3-med-img2img" })
        #expect((sd3.width, sd3.height) == (640, 448), "the input's size rounded down to SD3's multiple of 64")
        #expect(sd3.sampler == "euler" && sd3.scheduler == "karras")
        await server.shutdown()
    }

    @Test func theSegmindSDKRaisesEachErrorWithTheGatewaysMessage() async throws {
        let backend = FakeBackend()
        let (server, port) = try Self.start(backend: backend)
        let result = try await Self.sdk(port, "errors")
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output == "segmind sdk: errors ok\n")
        #expect(backend.requests.isEmpty, "no error reached the backend")
        backend.fail(with: .failed("out of memory on the GPU"))
        let down = try await Self.sdk(port, "backend-down")
        #expect(down.status == 0, "\(down.output)\(down.errors)")
        await server.shutdown()
    }

    @Test func aNodeFetchClientLikeTheDocumentationSnippets() async throws {
        let backend = FakeBackend()
        let (server, port) = try Self.start(backend: backend)
        let result = try await Command.run("node", [Repository.path("Tests/SDGateTests/Clients/segmind_fetch.mjs"), "\(port)", TestGate.key])
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output == "fetch: ok\n")
        #expect(backend.requests.count == 1)
        #expect(backend.requests.first?.options.style == "base")
        #expect((backend.requests.first?.width, backend.requests.first?.height) == (896, 1152))
        await server.shutdown()
    }
}
