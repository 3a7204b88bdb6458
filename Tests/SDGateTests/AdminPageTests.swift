import Foundation
import TestSupport
import Testing

/// The admin page of a real `sdgate serve`, driven in headless Chromium (`Clients/admin_page.py`,
/// over the DevTools protocol): sign in, create a key, see its balance fall after a request, top it
/// up, set and remove its budget per day, revoke it. The screenshots stay after the run, in
/// `.build/admin-page-screenshots` (the last run's only), named in the test's output.
@Suite("Admin page", .serialized)
struct AdminPageTests {
    static let adminToken = "proxy-test-admin-token"

    @Test func anOperatorSignsInCreatesAKeyAndSeesItsBalanceChangeInChromium() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]])
        let screenshots = URL(fileURLWithPath: Repository.path(".build/admin-page-screenshots"))
        try? FileManager.default.removeItem(at: screenshots)
        try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)

        let run = try await Command.run(
            "python3",
            [
                Repository.path("Tests/SDGateTests/Clients/admin_page.py"),
                "http://127.0.0.1:\(gateway.port)", Self.adminToken, screenshots.path,
            ])
        #expect(run.status == 0 && run.output == "admin page: ok\n", "\(run.output)\(run.errors)")
        print("admin page screenshots: \(screenshots.path)")
        for name in ["1-signed-in.png", "2-after-a-request.png", "3-budget.png", "4-revoked.png"] {
            let png = try Data(contentsOf: screenshots.appendingPathComponent(name))
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "\(name): \(png.count) bytes")
        }
        // What the page did is what the ledger holds: one key, charged once, topped up, revoked.
        let usage = try await gateway.usage()
        #expect(usage.map { $0["status"] as? Int } == [200])
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    @Test func thePageIsPublicItsDataIsNotAndTheSeriesAddUp() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]])
        let base = "http://127.0.0.1:\(gateway.port)"
        let page = try await MetricsTests.curl(["\(base)/admin"])
        #expect(page.status == 200 && page.headers["content-type"] == "text/html; charset=utf-8" && page.body.contains("sdgate admin"))
        #expect(page.headers["content-security-policy"]?.contains("script-src 'self'") == true && page.headers["x-content-type-options"] == "nosniff")
        #expect(try await MetricsTests.curl(["\(base)/admin/assets/admin.js"]).headers["content-type"] == "text/javascript; charset=utf-8")
        #expect(try await MetricsTests.curl(["\(base)/admin/usage/series"]).status == 401, "the data needs the token")

        let member = try await gateway.createKey(name: "sam", credits: "1")
        var costs: [String] = []
        for _ in 1...2 {
            let answer = try await MetricsTests.segmind(base, key: member.secret, body: #"{"prompt": "a fox", "base64": false}"#)
            costs.append(try #require(answer.headers["x-cost"]))
        }
        let admin = ["-H", "Authorization: Bearer \(Self.adminToken)"]
        let series = try await MetricsTests.curl(admin + ["\(base)/admin/usage/series?since=24h&step=1h"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(series.body.utf8)) as? [String: Any], "\(series.body)")
        #expect((object["buckets"] as? [String])?.count == 25, "24 hours in whole hours: the first and last partly")
        let byKey = try #require((object["by_key"] as? [[String: Any]])?.first)
        #expect(byKey["key_id"] as? String == member.id)
        #expect((byKey["requests"] as? [Int])?.reduce(0, +) == 2)
        let spent = (byKey["cost"] as? [String] ?? []).compactMap(Double.init).reduce(0, +)
        #expect(abs(spent - costs.compactMap(Double.init).reduce(0, +)) < 1e-9)
        #expect((object["by_model"] as? [[String: Any]])?.map { $0["model"] as? String } == ["sdxl1.0-txt2img"])
        #expect(try await MetricsTests.curl(admin + ["\(base)/admin/usage/series?step=1m"]).status == 422)
        #expect(try await MetricsTests.curl(admin + ["\(base)/admin/usage/series?since=60d&step=1h"]).status == 422, "too many steps")

        let latest = try await MetricsTests.curl(admin + ["\(base)/admin/usage?limit=1"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(latest.body.utf8)) as? [String: Any])
        #expect((report["requests"] as? [Any])?.count == 1 && report["total_requests"] as? Int == 2)
        #expect(try await MetricsTests.curl(admin + ["\(base)/admin/usage?limit=0"]).status == 422)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }
}
