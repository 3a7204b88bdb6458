import Foundation
import NIOCore
import TestSupport
import Testing

@testable import UpstreamProxy

/// The upstream's HTTP client gathers an answer whole, each byte copied once into one array, and
/// refuses one longer than its limit as unreadable rather than holding it.
@Suite("Upstream client")
struct UpstreamClientTests {
    static func call(_ client: UpstreamClient, _ upstream: FakeSegmindUpstream) async throws(UpstreamFailure) -> UpstreamResponse {
        try await client.send(
            "POST", upstream.baseURL + "/v1/sdxl1.0-txt2img", headers: [("x-api-key", upstream.key), ("Content-Type", "application/json")],
            body: ByteBuffer(string: #"{"prompt":"a fox","img_width":640,"img_height":480}"#), deadline: .now() + .seconds(30))
    }

    @Test func anAnswerIsGatheredWholeAndOneLongerThanTheLimitIsUnreadable() async throws {
        let upstream = try FakeSegmindUpstream()
        let client = UpstreamClient(poolSize: 1, maxAnswerBytes: 1 << 20)
        upstream.imagePadding = 600_000
        let answer = try await Self.call(client, upstream)
        #expect(answer.status == 200 && answer.header("x-seed-value") == "42")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])
        let image = try #require((json["image"] as? String).flatMap { Data(base64Encoded: $0) })
        #expect(Array(image) == FakeSegmindUpstream.image(width: 640, height: 480, padding: 600_000))

        upstream.imagePadding = 800_000
        do {
            _ = try await Self.call(client, upstream)
            Issue.record("an answer past the limit was read")
        } catch {
            #expect(error == .answered(UpstreamFailure.unreadable))
        }
        // The client serves on.
        upstream.imagePadding = 0
        #expect(try await Self.call(client, upstream).status == 200)
        await client.shutdown()
        await upstream.shutdown()
    }
}
