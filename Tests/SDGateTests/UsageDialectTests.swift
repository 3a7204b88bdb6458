import Foundation
import TestSupport
import Testing

/// Metering is the same whichever API a request comes in through: the same request through
/// Segmind (v1 at once, v2 as a job) and ModelsLab v3 costs the same, and each is one usage row
/// that names its dialect, in `/admin/usage` as in `sdgate usage`.
@Suite("Usage by dialect through sdgate serve", .serialized)
struct UsageDialectTests {
    @Test func eachDialectsRequestIsOneUsageRowNamingItsDialectAtTheSameCost() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]])
        let member = try await gateway.createKey(name: "dora", credits: "1")
        let base = "http://127.0.0.1:\(gateway.port)"
        let segmind = ["-H", "x-api-key: \(member.secret)", "-H", "Content-Type: application/json", "-d", #"{"prompt": "a lighthouse"}"#]

        let now = try await curl(segmind + ["\(base)/v1/sdxl1.0-txt2img"])
        #expect(now.status == 200, "\(now)")
        let requestID = try #require(Self.header("x-request-id", in: now.headers))
        let queued = try await curl(segmind + ["\(base)/v2/sdxl1.0-txt2img"])
        let job = try #require(queued.body["request_id"] as? String, "\(queued)")
        let v3 = try await curl([
            // The same image as the Segmind requests' (their model's 25 steps, not v3's default 31) costs the same.
            "-H", "Content-Type: application/json", "-d",
            #"{"key": "\#(member.secret)", "prompt": "a lighthouse", "samples": "1", "num_inference_steps": 25}"#,
            "\(base)/api/v3/text2img",
        ])
        #expect(v3.body["status"] as? String == "success", "\(v3)")
        let v3Job = try #require(v3.body["id"] as? Int, "\(v3)")

        // A job records its usage when it ends, which may be just after its answer.
        let admin = ["-H", "Authorization: Bearer proxy-test-admin-token"]
        var report: [String: Any] = [:]
        let recorded = await eventually {
            report = (try? await AdminAPITests.curl(admin + ["\(base)/admin/usage"]).body as? [String: Any]) ?? [:]
            return (report["requests"] as? [[String: Any]])?.count == 3
        }
        #expect(recorded, "\(report)")
        let rows = report["requests"] as? [[String: Any]] ?? []
        let dialects = Dictionary(rows.map { ($0["request_id"] as? String ?? "", $0["dialect"] as? String ?? "none") }) { first, _ in first }
        #expect(dialects == [requestID: "segmind", job: "segmind", String(v3Job): "modelslab"], "\(rows)")
        #expect(rows.allSatisfy { $0["cost"] as? String == "0.008" && $0["status"] as? Int == 200 }, "\(rows)")
        let byDialect = (report["by_dialect"] as? [[String: Any]])?.map { "\($0["dialect"] ?? ""): \($0["requests"] ?? ""), \($0["cost"] ?? "")" }
        #expect(byDialect == ["modelslab: 1, 0.008", "segmind: 2, 0.016"], "\(report)")

        // The command line shows the same.
        let cli = try await gateway.usage()
        #expect(cli.compactMap { $0["dialect"] as? String }.sorted() == ["modelslab", "segmind", "segmind"], "\(cli)")
        let text = try await gateway.command(["usage"])
        #expect(text.output.contains("sdxl1.0-txt2img  modelslab  200  0.008"), "\(text.output)")
        #expect(text.output.contains("  via segmind: 2 requests, 0.016 credits"), "\(text.output)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// A header's value in a head as `curl` (lowercased) returns it.
    static func header(_ name: String, in head: String) -> String? {
        head.split(separator: "\r\n").first { $0.hasPrefix("\(name): ") }.map { String($0.dropFirst(name.count + 2)) }
    }
}
