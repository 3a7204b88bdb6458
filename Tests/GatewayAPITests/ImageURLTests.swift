import Foundation
import GenerationCore
import GuardedHTTP
import HTTPServer
import TestSupport
import Testing

@testable import GatewayAPI

/// Image URLs fetched by the gateway from a local test server, through the Segmind dialect, for
/// every model that takes an image.
@Suite("Image URLs")
struct ImageURLTests {
    static let imageModels = ShippedCatalog.catalog.models.values.filter { $0.field(.image) != nil }.map(\.slug).sorted()

    /// Serves a PNG, redirects, a refusal, an oversized answer and a text file.
    final class ImageHost: Sendable {
        let server: HTTPServer
        let port: Int

        init() throws {
            var router = Router()
            let png = TestImages.png(width: 300, height: 200)
            router.get("/cat.png") { _, _ in HTTPResponse(headers: ["Content-Type": "image/png"], bytes: png) }
            router.get("/to-private") { request, _ in
                // The same server, by another loopback address: the hop must be checked again.
                let port = request.headers["Host"]?.split(separator: ":").last ?? "80"
                return HTTPResponse(status: HTTPStatus(code: 302), headers: ["Location": "http://127.0.0.2:\(port)/cat.png"])
            }
            router.get("/to-cat") { _, _ in HTTPResponse(status: HTTPStatus(code: 301), headers: ["Location": "/cat.png"]) }
            router.get("/loop") { _, _ in HTTPResponse(status: HTTPStatus(code: 302), headers: ["Location": "/loop"]) }
            router.get("/to-port-65536") { _, _ in
                HTTPResponse(status: HTTPStatus(code: 302), headers: ["Location": "http://127.0.0.1:65536/cat.png"])
            }
            router.get("/text") { _, _ in .text(.ok, "not an image") }
            router.get("/huge") { _, _ in HTTPResponse(bytes: [UInt8](repeating: 0x89, count: 64 * 1024)) }
            var configuration = HTTPServer.Configuration()
            configuration.host = "127.0.0.1"
            configuration.port = 0
            server = try HTTPServer(configuration: configuration, responder: router)
            port = try server.start().port
        }

        func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }
    }

    static func answer(
        _ slug: String, image: String, policy: AddressPolicy, maxBytes: Int = 20 << 20, resolver: HostResolver = .system
    ) async throws -> (HTTPResponse, FakeBackend) {
        let backend = FakeBackend()
        var limits = ImageLoader.Limits()
        limits.maxBytes = maxBytes
        let dialect = SegmindDialect(
            admission: Admission(
                catalog: ShippedCatalog.catalog, gate: TestGate(),
                // What a fetch answers is tested here, not how long it takes: with every suite at
                // once on two cores a fetch from 127.0.0.1 has taken past the default 15 s.
                images: ImageLoader(limits: limits, fetcher: URLImageFetcher(policy: policy, timeout: .seconds(90), resolver: resolver))),
            backend: backend)
        let body = try JSONSerialization.data(withJSONObject: ["prompt": "a cat", "image": image])
        let request = HTTPRequest(
            head: HTTPRequestHead(
                method: .post, target: "/v1/\(slug)",
                headers: ["Host": "t", "x-api-key": TestGate.key]), body: Array(body))
        return (await dialect.handle(request, slug: slug), backend)
    }

    static func error(_ response: HTTPResponse) -> String {
        guard case .bytes(let bytes) = response.body,
            let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: String]
        else { return "" }
        return object["error"] ?? ""
    }

    @Test(arguments: imageModels)
    func aURLOnALocalServerIsFetchedWhenTheSwitchAllowsIt(slug: String) async throws {
        let host = try ImageHost()
        let (response, backend) = try await Self.answer(slug, image: host.url("/cat.png"), policy: AddressPolicy(allowPrivateAddresses: true))
        #expect(response.status == .ok, "\(Self.error(response))")
        #expect(backend.requests.first?.image?.info == ImageInfo(format: .png, width: 300, height: 200))
        await host.server.shutdown()
    }

    @Test(arguments: imageModels)
    func theSameURLIsRefusedByDefault(slug: String) async throws {
        let host = try ImageHost()
        let (response, backend) = try await Self.answer(slug, image: host.url("/cat.png"), policy: AddressPolicy())
        #expect(response.status == .badRequest)
        #expect(Self.error(response) == "image: Invalid image URL or path: the image URL's host 127.0.0.1 is not a public address")
        #expect(backend.requests.isEmpty)
        await host.server.shutdown()
    }

    @Test(arguments: imageModels)
    func aRedirectToAPrivateAddressIsRefused(slug: String) async throws {
        let host = try ImageHost()
        // The first hop is allowed by name; the redirect's target is checked on its own.
        let (response, _) = try await Self.answer(slug, image: host.url("/to-private"), policy: AddressPolicy(alsoAllowed: ["127.0.0.1"]))
        #expect(response.status == .badRequest)
        #expect(Self.error(response) == "image: Invalid image URL or path: the image URL's host 127.0.0.2 is not a public address")
        await host.server.shutdown()
    }

    @Test func otherFetchFailuresAreClear() async throws {
        let host = try ImageHost()
        let allowed = AddressPolicy(allowPrivateAddresses: true)
        let cases: [(String, String)] = [
            ("/to-cat", ""),
            ("/missing", "the image URL answered HTTP 404"),
            ("/loop", "the image URL redirects more than 3 times"),
            ("/text", "not a JPEG, PNG, WebP or GIF image"),
            ("/huge", "the file at the image URL is larger than 1024 bytes"),
        ]
        for (path, problem) in cases {
            let (response, _) = try await Self.answer("sdxl-img2img", image: host.url(path), policy: allowed, maxBytes: 1024)
            if problem.isEmpty {
                #expect(response.status == .ok, "\(path): \(Self.error(response))")
            } else {
                #expect(Self.error(response) == "image: Invalid image URL or path: \(problem)", "\(path)")
            }
        }
        let (unknownHost, _) = try await Self.answer("sdxl-img2img", image: "http://no-such-host.invalid/cat.png", policy: allowed)
        #expect(Self.error(unknownHost) == "image: Invalid image URL or path: the image URL's host no-such-host.invalid does not resolve")
        await host.server.shutdown()
    }

    /// A port past 65535 is taken by the URL parser and trapped on by the HTTP client's socket
    /// address: such a URL, or a redirect to one, once stopped the gateway for a key without credits.
    @Test func aPortNoSocketCanHaveIsRefusedBeforeAnyConnection() async throws {
        let host = try ImageHost()
        let allowed = AddressPolicy(allowPrivateAddresses: true)
        for image in ["http://93.184.216.34:65536/a.png", "http://127.0.0.1:99999/a.png", "http://127.0.0.1:0/a.png", host.url("/to-port-65536")] {
            let (response, backend) = try await Self.answer("sdxl-img2img", image: image, policy: allowed)
            #expect(response.status == .badRequest, "\(image)")
            #expect(Self.error(response) == "image: Invalid image URL or path: the image URL's port must be 1 to 65535", "\(image)")
            #expect(backend.requests.isEmpty)
        }
        await host.server.shutdown()
    }

    /// An image whose body comes a byte at a time is cut off at the fetch's deadline (the HTTP
    /// client's own ends with the head): it once held the fetch, and what it had read, for as long
    /// as its host kept sending.
    @Test func aBodyThatTricklesIsCutOffAtTheFetchsDeadline() async throws {
        let peer = try DrippingPeer(body: TestImages.png(width: 8, height: 8))
        let fetcher = GuardedFetcher(policy: AddressPolicy(allowPrivateAddresses: true), timeout: .seconds(1))
        let url = try #require(URL(string: peer.baseURL + "/slow.png"))
        await #expect(throws: GuardedFetcher.Refusal(message: "fetching the URL took too long")) {
            try await fetcher.get(url, maxBytes: 1 << 20)
        }
        #expect(!peer.hasSentABodyWhole)
        await peer.shutdown()
    }

    /// The image URLs being received share one budget of bytes: past it, a fetch is refused as
    /// busy (a 503 to its client), and a fetch that ends gives its bytes back. Sixty slow URLs
    /// held 1.8 GB for a key with no credits.
    @Test func imagesBeingReceivedShareOneBudget() async throws {
        let peer = try DrippingPeer(body: [UInt8](repeating: 7, count: 800 << 10), sentAtOnce: 700 << 10)
        let budget = FetchBudget(limit: 1 << 20)
        let fetcher = GuardedFetcher(policy: AddressPolicy(allowPrivateAddresses: true), timeout: .seconds(60), budget: budget)
        let url = try #require(URL(string: peer.baseURL + "/slow.png"))
        let first = Task { try await fetcher.get(url, maxBytes: 2 << 20) }
        // Its first 700 KiB, and a byte every 200 ms after them.
        #expect(await eventually(timeout: .seconds(30)) { budget.inUse >= 700 << 10 })
        var busy = GuardedFetcher.Refusal(message: "the gateway is receiving too many images at once; retry shortly")
        busy.busy = true
        await #expect(throws: busy) { try await fetcher.get(url, maxBytes: 2 << 20) }
        // The first, ended, gives back what it held.
        first.cancel()
        await #expect(throws: (any Error).self) { try await first.value }
        #expect(budget.inUse == 0)
        await peer.shutdown()
    }
}
