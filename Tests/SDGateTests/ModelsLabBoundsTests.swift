import Foundation
import GatewayAPI
import GenerationCore
import GuardedHTTP
import HTTPServer
import Jobs
import Ledger
import Logging
import TestSupport
import Testing

@testable import SDGateApp

/// What a ModelsLab job keeps and repeats in every answer about it, and what a body sent before
/// its key is known may cost, on the same gateway as `ModelsLabTests`: each bounded.
@Suite("ModelsLab v3 bounds", .serialized)
struct ModelsLabBoundsTests {
    /// A job's input image runs with it, but is not what its polls read, nor kept once it ended:
    /// kept in the job's payload, each fetch read and decoded the whole image (polls of one 17 MB
    /// job from 100 threads stalled the gateway for seconds), and the hour's retention kept it.
    @Test func aJobsInputImageRunsWithItAndIsNotKeptOnceItEnded() async throws {
        let gateway = try await ModelsLabTests.Gateway(wait: .milliseconds(300))
        let (_, secret) = try await gateway.key(credits: "1")
        // A real header with 64 KiB behind it (the client takes its body as an argument): the
        // gateway reads only the header.
        let image = TestImages.png(width: 64, height: 64) + [UInt8](repeating: 0, count: 64 << 10)
        gateway.backend.pause()
        let queued = try await gateway.post(
            "/api/v3/img2img", ["key": secret, "prompt": "x", "init_image": Data(image).base64EncodedString(), "num_inference_steps": "20"])
        let id = try #require(queued["id"] as? Int, "\(queued)")
        #expect(await eventually { gateway.backend.requests.count == 1 })
        #expect(gateway.backend.requests.first?.image?.bytes == image, "the run has the image")
        #expect(try await gateway.post("/api/v3/fetch/\(id)", ["key": secret])["status"] as? String == "processing")

        gateway.backend.resume()
        #expect(await eventually { (try? await gateway.post("/api/v3/fetch/\(id)", ["key": secret]))?["status"] as? String == "success" })
        let stored = try await Command.run("sqlite3", [gateway.ledgerPath, "SELECT length(payload) < 10000, input IS NULL FROM job"])
        #expect(stored.output == "1|1\n", "a few kilobytes left, and no image: \(stored.output)\(stored.errors)")
        await gateway.stop()
    }

    /// A `track_id` and a webhook URL are kept with the job and repeated in each fetch's answer and
    /// in the webhook's body: past their bounds they are refused before anything is held, in v3
    /// and v6 alike. Unbounded, one request with a 25 MB `track_id` made every fetch of its job
    /// build a 25 MB answer.
    @Test func aTrackIDOrWebhookPastItsBoundIsRefusedAndNothingIsHeld() async throws {
        let gateway = try await ModelsLabTests.Gateway(wait: .seconds(20))
        let (keyID, secret) = try await gateway.key(credits: "1")
        for path in ["/api/v3/text2img", "/api/v6/images/text2img"] {
            var body: [String: Any] = ["key": secret, "prompt": "x", "track_id": String(repeating: "t", count: 257)]
            if path.contains("v6") { body["model_id"] = "sdxl1.0-txt2img" }
            let long = try await gateway.post(path, body)
            #expect(
                (long["message"] as? [String: [String]])?["track_id"] == ["must be at most 256 characters, got 257"], "\(path): \(long)")
            body["track_id"] = "order-1"
            body["webhook"] = "https://hooks.example/" + String(repeating: "w", count: 2048)
            let longHook = try await gateway.post(path, body)
            #expect(longHook["message"] as? String == "webhook: the URL must be at most 2048 bytes, got 2070", "\(path): \(longHook)")
            // A port no socket can have: taken, its delivery trapped the gateway, on every restart.
            body["webhook"] = "http://93.184.216.34:99999/hook"
            let badPort = try await gateway.post(path, body)
            #expect((badPort["message"] as? String)?.hasSuffix("port must be 1 to 65535") == true, "\(path): \(badPort)")
        }
        #expect(try await gateway.ledger.balance(of: .key(keyID)) == Balance(balance: Credits(decimal: "1")!, held: .zero))

        // At the bound, the id comes back as sent.
        let trackID = String(repeating: "t", count: 256)
        let served = try await gateway.post("/api/v3/text2img", ["key": secret, "prompt": "x", "track_id": trackID])
        #expect(served["status"] as? String == "success" && served["track_id"] as? String == trackID, "\(served)")
        await gateway.stop()
    }

    /// The key is in the body, so anyone can make the gateway read one: an endpoint that takes no
    /// image refuses a body past a megabyte unread (every endpoint took 32 MB, whose decoding held
    /// the event loops for seconds), and a large form is decoded in one pass over its bytes.
    @Test func aBodyLargerThanATextEndpointTakesIsRefusedUnreadAndALargeFormIsRead() async throws {
        let gateway = try await ModelsLabTests.Gateway(wait: .seconds(20))
        let folder = Scratch.path("modelslab-bodies")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func post(_ path: String, _ body: [UInt8], form: Bool = false) async throws -> (status: String, body: String) {
            let file = folder.appendingPathComponent(UUID().uuidString)
            try Data(body).write(to: file)
            let type = form ? "application/x-www-form-urlencoded" : "application/json"
            let run = try await Command.run(
                "curl", ["-s", "-w", "\n%{http_code}", "-H", "Content-Type: \(type)", "--data-binary", "@\(file.path)", gateway.base + path])
            let lines = run.output.split(separator: "\n", omittingEmptySubsequences: false)
            return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
        }
        let large = Array(#"{"prompt":""#.utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 2 << 20) + Array(#""}"#.utf8)
        for path in ["/api/v3/text2img", "/api/v6/images/text2img"] {
            let refused = try await post(path, large)
            #expect(refused.status == "413" && refused.body.contains("\"status\":\"error\""), "\(path): \(refused)")
        }
        // An image-to-image body may be large: a form of megabytes of `+` (spaces) is read whole,
        // and refused for its missing key.
        let form = Array("prompt=".utf8) + [UInt8](repeating: UInt8(ascii: "+"), count: 4 << 20)
        let read = try await post("/api/v3/img2img", form, form: true)
        #expect(read.status == "200" && read.body.contains("Invalid Api Key"), "\(read.status) \(read.body.prefix(300))")
        let (_, secret) = try await gateway.key(credits: "1")
        #expect(try await gateway.post("/api/v3/text2img", ["key": secret, "prompt": "x"])["status"] as? String == "success")
        await gateway.stop()
    }

    /// An image-to-image `init_image` URL is kept with the job and repeated as `meta.init_image` in
    /// each fetch's answer and in the webhook's body: past its bound it is refused before anything
    /// is held, in v3 and v6 alike. Unbounded, a 20 MB URL made every fetch of its job answer 20 MB.
    /// What no generation reads is not repeated at all: a text-to-image `init_image`, v3's `model_id`.
    @Test func anImageURLPastItsBoundIsRefusedAndWhatIsNotReadIsNotRepeated() async throws {
        let gateway = try await ModelsLabTests.Gateway(wait: .seconds(20), imageFetcher: SameImageFetcher())
        let (keyID, secret) = try await gateway.key(credits: "1")
        let longURL = "https://images.example/" + String(repeating: "i", count: 2048)
        for path in ["/api/v3/img2img", "/api/v6/images/img2img"] {
            var body: [String: Any] = ["key": secret, "prompt": "x", "init_image": longURL, "num_inference_steps": "20"]
            if path.contains("v6") { body["model_id"] = "sd-1.5" }
            let long = try await gateway.post(path, body)
            #expect(
                (long["message"] as? [String: [String]])?["init_image"] == ["the URL must be at most 2048 bytes, got 2071"],
                "\(path): \(long)")
        }
        #expect(try await gateway.ledger.balance(of: .key(keyID)) == Balance(balance: Credits(decimal: "1")!, held: .zero))

        // At the bound, the URL comes back as sent; base64 is not repeated.
        let url = String(longURL.prefix(2048))
        let served = try await gateway.post(
            "/api/v3/img2img", ["key": secret, "prompt": "x", "init_image": url, "num_inference_steps": "20"])
        #expect(served["status"] as? String == "success", "\(served)")
        #expect((served["meta"] as? [String: Any])?["init_image"] as? String == url)
        let base64 = try await gateway.post(
            "/api/v3/img2img", ["key": secret, "prompt": "x", "init_image": ModelsLabTests.inputImage, "num_inference_steps": "20"])
        #expect(base64["status"] as? String == "success" && (base64["meta"] as? [String: Any])?["init_image"] == nil, "\(base64)")

        let unread = String(repeating: "u", count: 40_000)
        let text = try await gateway.post(
            "/api/v3/text2img", ["key": secret, "prompt": "x", "init_image": "https://images.example/" + unread, "model_id": unread])
        let meta = try #require(text["meta"] as? [String: Any], "\(text)")
        let metaBytes = try JSONSerialization.data(withJSONObject: meta).count
        #expect(meta["init_image"] == nil && meta["model_id"] == nil, "\(meta.keys.sorted()): \(metaBytes) bytes")
        await gateway.stop()
    }

    /// Without `public_url`, a job's links are built from the request's Host: one that is no host
    /// name or address is refused by the server before anything is read or held (unchecked, a
    /// 30 KB Host made the job's answer 240 KB, as every fetch's and its webhook's), and a real one
    /// is in every link.
    @Test func aHostThatIsNoHostIsRefusedAndARealOneIsInTheLinks() async throws {
        let gateway = try await ModelsLabTests.Gateway(wait: .milliseconds(300))
        let (keyID, secret) = try await gateway.key(credits: "1")
        let port = try #require(gateway.base.split(separator: ":").last.flatMap { Int($0) })
        let body = #"{"key": "\#(secret)", "prompt": "x"}"#
        func submit(host: String) async throws -> RawClient.Response {
            let client = try RawClient(port: port)
            try await client.send(
                "POST /api/v3/text2img HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return try await client.readResponse()
        }
        gateway.backend.pause()
        let long = try await submit(host: String(repeating: "h", count: 30_000))
        #expect(long.status == 400 && long.body.count < 1024, "\(long.status), \(long.body.count) bytes")
        #expect(try await gateway.ledger.balance(of: .key(keyID)).held == .zero)

        let real = try await submit(host: "127.0.0.1:\(port)")
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(real.body)) as? [String: Any], "\(real)")
        let id = try #require(answer["id"] as? Int, "\(answer)")
        #expect(answer["fetch_result"] as? String == "\(gateway.base)/api/v3/fetch/\(id)")
        let links = try #require(answer["future_links"] as? [String], "\(answer)")
        #expect(!links.isEmpty && links.allSatisfy { $0.hasPrefix("\(gateway.base)/generations/") }, "\(links)")
        gateway.backend.resume()
        await gateway.stop()
    }
}

/// Answers every image URL with the same small PNG, without a network.
private struct SameImageFetcher: ImageFetcher {
    func fetch(_ url: URL, maxBytes: Int) async throws(ImageProblem) -> [UInt8] { TestImages.png(width: 64, height: 64) }
}
