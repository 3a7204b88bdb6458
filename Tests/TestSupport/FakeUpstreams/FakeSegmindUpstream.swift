import Foundation
import HTTPServer
import Synchronization

/// Segmind's `/v1/{slug}` as the contract describes it: the key in `x-api-key` (401 without the
/// right one), 406 for an account out of credits, 429 with `Retry-After`, and on success the
/// base64 JSON answer (a list for several samples) or raw bytes, with `x-cost`,
/// `x-remaining-credits`, `x-seed-value` and `x-generation-time`. Images are PNGs of the
/// requested size (or 512×512), `imagePadding` bytes longer than their header; with
/// `corruptedAt`, their base64 has a character outside the alphabet at that offset.
package final class FakeSegmindUpstream: FakeUpstream, @unchecked Sendable {
    /// What each generation costs the team (`x-cost`), and its balance there
    /// (`x-remaining-credits`), as the headers say them: numbers, unless a test says otherwise.
    package var cost: String {
        get { amounts.withLock { $0.cost } }
        set { amounts.withLock { $0.cost = newValue } }
    }
    package var remainingCredits: String {
        get { amounts.withLock { $0.remaining } }
        set { amounts.withLock { $0.remaining = newValue } }
    }
    private let amounts = Mutex((cost: "0.0042137", remaining: "9.2871"))

    package init(key: String = "SG_team_0123456789") throws {
        super.init(acceptingKey: key)
        var router = Router()
        router.post("/v1/{slug}", maxBodyBytes: 64 << 20) { request, _ in
            await self.generate(request)
        }
        try start(router)
    }

    /// Bytes of pseudo-random data after each image's end, as long as a real image's pixels.
    package var imagePadding: Int {
        get { padding.withLock { $0 } }
        set { padding.withLock { $0 = newValue } }
    }
    private let padding = Mutex(0)

    /// Where each image's base64 text gets a `!` (negative: from its end); nil: nowhere.
    package var corruptedAt: Int? {
        get { corruption.withLock { $0 } }
        set { corruption.withLock { $0 = newValue } }
    }
    private let corruption = Mutex<Int?>(nil)

    /// The image the fake answers with.
    package static func image(width: Int, height: Int, padding: Int) -> [UInt8] {
        TestImages.png(width: width, height: height) + (0..<padding).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 11) }
    }

    private func generate(_ request: HTTPRequest) async -> HTTPResponse {
        if let answer = await intercept(request) { return answer }
        guard request.headers["x-api-key"] == key, refusal != .rejectKey else {
            return Self.json(["error": "API key is invalid or may have expired"], status: .unauthorized)
        }
        switch refusal {
        case .outOfCredits: return Self.json(["error": "Insufficient credits"], status: .notAcceptable)
        case .rateLimited: return Self.json(["error": "Rate limit exceeded"], status: .tooManyRequests, headers: ["Retry-After": "7"])
        default: break
        }
        guard let body = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any],
            body["prompt"] is String
        else {
            return Self.json(["error": "prompt: is required"], status: .unprocessableContent)
        }
        let samples = images(for: Int(Self.number(body["samples"]) ?? 1))
        let image = Self.image(
            width: Int(Self.number(body["img_width"]) ?? 512), height: Int(Self.number(body["img_height"]) ?? 512), padding: imagePadding)
        let seed = Self.number(body["seed"]).map { String(UInt64($0)) } ?? "42"
        let headers: HTTPHeaders = ["x-cost": cost, "x-remaining-credits": remainingCredits, "x-seed-value": seed, "x-generation-time": "0.731"]
        var encoded = Data(image).base64EncodedString()
        if let offset = corruptedAt {
            var characters = Array(encoded.utf8)
            characters[offset < 0 ? characters.count + offset : offset] = UInt8(ascii: "!")
            encoded = String(decoding: characters, as: UTF8.self)
        }
        return Self.json(
            [
                "image": samples == 1 ? encoded as Any : Array(repeating: encoded, count: samples), "status": "Success",
                "infer_time": 0.731, "outputs": samples, "image_format": "png",
            ], headers: headers)
    }
}
