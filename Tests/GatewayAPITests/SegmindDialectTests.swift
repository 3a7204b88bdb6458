import Foundation
import GenerationCore
import HTTPServer
import TestSupport
import Testing

@testable import GatewayAPI

@Suite("Segmind dialect")
struct SegmindDialectTests {
    static func request(_ body: String, key: String? = TestGate.key, contentType: String? = "application/json") -> HTTPRequest {
        var headers: HTTPHeaders = ["Host": "t"]
        if let key { headers.add("x-api-key", key) }
        if let contentType { headers.add("Content-Type", contentType) }
        return HTTPRequest(head: HTTPRequestHead(method: .post, target: "/v1/sdxl1.0-txt2img", headers: headers), body: Array(body.utf8))
    }

    static func dialect(_ backend: FakeBackend) -> SegmindDialect {
        SegmindDialect(admission: Admission(catalog: ShippedCatalog.catalog, gate: TestGate(), images: ImageLoader(fetcher: nil)), backend: backend)
    }

    @Test(
        arguments: [
            (InferenceError.busy(retryAfter: .milliseconds(2500)), 503, "3"),
            (.timedOut, 504, nil),
            (.upstreamRefused("the upstream account is out of credits", retryAfter: .seconds(30)), 503, "30"),
            (.upstreamRefused("the upstream rejected the gateway's key"), 502, nil),
            (.failed("out of memory on the GPU"), 502, nil),
        ] as [(InferenceError, Int, String?)])
    func backendErrorsBecome502503504(error: InferenceError, status: Int, retryAfter: String?) async {
        let backend = FakeBackend()
        backend.fail(with: error)
        let response = await Self.dialect(backend).handle(Self.request(#"{"prompt":"x"}"#), slug: "sdxl1.0-txt2img")
        #expect(response.status.code == status)
        #expect(response.headers["Retry-After"] == retryAfter)
        #expect(response.headers["x-cost"] == nil, "nothing is charged for a failure")
        guard case .bytes(let bytes) = response.body else { return }
        #expect(String(decoding: bytes, as: UTF8.self) == "{\"error\":\"\(error.description)\"}")
    }

    @Test func aSeedOfMinusOneIsReplacedAndReported() async {
        let backend = FakeBackend()
        let dialect = SegmindDialect(
            admission: Admission(catalog: ShippedCatalog.catalog, gate: TestGate(), images: ImageLoader(fetcher: nil)),
            backend: backend, randomSeed: { 777 })
        let response = await dialect.handle(Self.request(#"{"prompt":"x","seed":-1}"#), slug: "sdxl1.0-txt2img")
        #expect(response.headers["x-seed-value"] == "777")
        #expect(backend.requests.first?.seed == 777)
    }

    @Test func theFirstRefusalWins() async {
        let backend = FakeBackend()
        let dialect = Self.dialect(backend)
        // A wrong key outranks a broken body; a foreign Content-Type outranks the body; a non-object body outranks fields.
        #expect(await dialect.handle(Self.request("not json", key: "SG_wrong"), slug: "sdxl1.0-txt2img").status == .unauthorized)
        #expect(await dialect.handle(Self.request("not json", contentType: "text/plain"), slug: "sdxl1.0-txt2img").status == .notAcceptable)
        #expect(await dialect.handle(Self.request("[1, 2]"), slug: "sdxl1.0-txt2img").status == .badRequest)
        #expect(
            await dialect.handle(Self.request(#"{"prompt":"x"}"#, contentType: "application/json; charset=utf-8"), slug: "sdxl1.0-txt2img").status
                == .ok)
        #expect(await dialect.handle(Self.request(#"{"prompt":"x"}"#, contentType: nil), slug: "sdxl1.0-txt2img").status == .ok)
        #expect(await dialect.handle(Self.request(#"{"prompt":"x"}"#), slug: "sdxl9").status == .notFound)
    }

    @Test func overHTTPAMissingKeyIsRefusedBeforeTheBodyAndOtherMethodsAre405() async throws {
        var router = Router()
        Self.dialect(FakeBackend()).register(on: &router)
        var configuration = HTTPServer.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        let server = try HTTPServer(configuration: configuration, responder: router)
        let port = try server.start().port
        // curl sends Expect: 100-continue for a body this large and waits: no 100 Continue comes.
        let body = Scratch.path("body", pathExtension: "json")
        try Data(("{\"prompt\":\"" + String(repeating: "x", count: 200_000) + "\"}").utf8).write(to: body)
        defer { try? FileManager.default.removeItem(at: body) }
        let noKey = try await Command.run(
            "curl",
            [
                "-sS", "-v", "-H", "Content-Type: application/json", "--data-binary", "@\(body.path)",
                "http://127.0.0.1:\(port)/v1/sdxl1.0-txt2img",
            ])
        #expect(noKey.output == #"{"error":"Missing Authorization or x-api-key"}"#)
        #expect(noKey.errors.contains("< HTTP/1.1 401"))
        #expect(!noKey.errors.contains("100 Continue"))
        let get = try await Command.run("curl", ["-sS", "-i", "http://127.0.0.1:\(port)/v1/sdxl1.0-txt2img"])
        #expect(get.output.hasPrefix("HTTP/1.1 405"))
        #expect(get.output.contains("Allow: POST"))
        await server.shutdown()
    }
}
