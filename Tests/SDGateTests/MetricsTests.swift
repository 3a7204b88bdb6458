import Foundation
import HTTPServer
import Logging
import TestSupport
import Testing

@testable import SDGateApp

/// `GET /metrics` of a real `sdgate serve` in front of a fake Segmind upstream, scraped with curl
/// after known traffic: every documented series is there, with the counts of that traffic.
@Suite("Metrics", .serialized)
struct MetricsTests {
    static let scrapeToken = "scrape-token-for-tests"

    @Test func aScrapeAfterTrafficCountsEveryRequestCreditAndUpstreamError() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: "metrics:\n  token: \(Self.scrapeToken)\n")
        let member = try await gateway.createKey(name: "mia", credits: "1")
        let base = "http://127.0.0.1:\(gateway.port)"

        // Three generations, one invalid request, one without a key, one to no route.
        var charged: [String] = []
        for _ in 1...3 {
            let answer = try await Self.segmind(base, key: member.secret, body: #"{"prompt": "a fox in the snow", "base64": false}"#)
            #expect(answer.status == 200, "\(answer)")
            charged.append(try #require(answer.headers["x-cost"]))
        }
        #expect(try await Self.segmind(base, key: member.secret, body: #"{"prompt": "a fox in the snow", "samples": 9}"#).status == 422)
        #expect(try await Self.segmind(base, key: nil, body: #"{"prompt": "a fox in the snow"}"#).status == 401)
        #expect(try await Self.curl(["\(base)/nowhere/\(member.id)"]).status == 404)

        // A generation held up at the upstream: its hold is open while it waits.
        upstream.misbehave(.stall)
        async let stalled = Self.segmind(base, key: member.secret, body: #"{"prompt": "a fox in the snow", "base64": false}"#)
        #expect(await eventually { upstream.stalledCount == 1 })
        let during = try await Self.scrape(base)
        #expect(during.value("sdgate_holds_open") == 1)
        #expect(during.value("sdgate_holds_open_credits") == Double(charged[0]))
        upstream.misbehave(nil)
        #expect(try await stalled.status == 502, "the upstream answered 503 when its stall ended")

        // A ModelsLab v3 call: a background job, through the same upstream.
        let v3 = try await Self.curl([
            "-H", "Content-Type: application/json", "-d",
            #"{"key": "\#(member.secret)", "prompt": "a fox in the snow", "width": "512", "height": "512"}"#,
            "\(base)/api/v3/text2img",
        ])
        #expect(v3.body.contains(#""status":"success""#), "\(v3.body)")

        // Scrapes need the metrics token (and not the admin token).
        #expect(try await Self.curl(["\(base)/metrics"]).status == 401)
        #expect(try await Self.curl(["-H", "Authorization: Bearer proxy-test-admin-token", "\(base)/metrics"]).status == 401)
        // Compressed, as Prometheus asks for it (curl decodes it).
        let scrape = try await Self.curl(["--compressed", "-H", "Authorization: Bearer \(Self.scrapeToken)", "\(base)/metrics"])
        #expect(scrape.status == 200 && scrape.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(scrape.headers["content-encoding"] == "gzip" && scrape.headers["vary"] == "Accept-Encoding")
        let metrics = PrometheusText(scrape.body)
        #expect(metrics.malformed.isEmpty, "\(metrics.malformed)")

        // Requests by route pattern and status, never by raw path.
        let v1 = ["method": "POST", "route": "/v1/{slug}"]
        func requests(_ labels: [String: String], _ status: Int) -> Double? {
            metrics.value("sdgate_http_requests_total", labels.merging(["status": "\(status)"]) { $1 })
        }
        #expect(requests(v1, 200) == 3 && requests(v1, 422) == 1 && requests(v1, 401) == 1 && requests(v1, 502) == 1)
        #expect(requests(["method": "POST", "route": "/api/v3/text2img"], 200) == 1)
        #expect(requests(["method": "GET", "route": "unmatched"], 404) == 1)
        #expect(requests(["method": "GET", "route": "/metrics"], 401) == 2)
        #expect(requests(["method": "GET", "route": "/metrics"], 200) ?? 0 >= 1)
        Self.expectHistogram(metrics, "sdgate_http_request_duration_seconds", v1, count: 6)

        // Generations by model and status, the v3 job among them; credits as the ledger moved them.
        let model = ["model": "sdxl1.0-txt2img"]
        #expect(metrics.value("sdgate_generations_total", model.merging(["status": "200"]) { $1 }) == 4)
        #expect(metrics.value("sdgate_generations_total", model.merging(["status": "422"]) { $1 }) == 1)
        #expect(metrics.value("sdgate_generations_total", model.merging(["status": "502"]) { $1 }) == 1)
        Self.expectHistogram(metrics, "sdgate_generation_duration_seconds", model, count: 4)
        let price = try #require(Double(charged[0]))
        let spent = 1 - (try #require(Double(try await gateway.credits(of: member.id).available)))
        #expect(spent > 3 * price, "three Segmind calls and the v3 job")
        #expect(abs((metrics.value("sdgate_credits_charged_total", model) ?? 0) - spent) < 1e-9, "what the ledger charged")
        #expect(abs((metrics.value("sdgate_credits_refunded_total", model) ?? 0) - price) < 1e-9, "the failed generation's hold")
        #expect(metrics.value("sdgate_holds_open") == 0 && metrics.value("sdgate_holds_open_credits") == 0)
        #expect(metrics.value("sdgate_holds_expired_total") == nil, "no hold expired")

        // The upstream: what it charged the team for the three Segmind calls and the v3 job, how
        // long it took, how it failed.
        let segmind = ["upstream": "segmind"]
        #expect(abs((metrics.value("sdgate_upstream_cost_total", segmind) ?? 0) - 4 * Double(upstream.cost)!) < 1e-9)
        #expect(metrics.value("sdgate_upstream_errors_total", segmind.merging(["kind": "failed"]) { $1 }) == 1)
        Self.expectHistogram(metrics, "sdgate_upstream_duration_seconds", segmind, count: 4)

        // The job queue, and the server.
        #expect(metrics.value("sdgate_jobs_queued") == 0)
        Self.expectHistogram(metrics, "sdgate_job_queue_wait_seconds", [:], count: 1)
        #expect(metrics.value("sdgate_http_connections_open") ?? 0 >= 1, "the scrape's own connection at least")

        #expect(metrics.types["sdgate_http_requests_total"] == "counter" && metrics.types["sdgate_credits_charged_total"] == "counter")
        #expect(metrics.types["sdgate_holds_open"] == "gauge" && metrics.types["sdgate_generation_duration_seconds"] == "histogram")
        for secret in [member.secret, upstream.key, "a fox in the snow", member.id, "/nowhere"] {
            #expect(!scrape.body.contains(secret), "no key, prompt or raw path in a label")
        }
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    @Test func metricsCanBeSwitchedOff() async throws {
        var configuration = GatewayConfiguration()
        configuration.server.host = "127.0.0.1"
        configuration.server.port = 0
        configuration.catalogFile = Repository.path("Config/models.yaml")
        configuration.metricsEnabled = false
        let server = try GatewayApp(configuration: configuration, logger: Logger(label: "test"), gate: TestGate()).makeServer()
        let port = try server.start().port
        #expect(try await Self.curl(["http://127.0.0.1:\(port)/metrics"]).status == 404)
        #expect(try await Self.curl(["http://127.0.0.1:\(port)/health"]).status == 200)
        await server.shutdown()
    }

    /// A method is any token: a client that sends made-up ones gets its answers counted under
    /// `other`, so that it cannot make the registry grow without end.
    @Test func madeUpMethodsAreCountedAsOtherNotAsSeriesOfTheirOwn() async throws {
        var configuration = GatewayConfiguration()
        configuration.server.host = "127.0.0.1"
        configuration.server.port = 0
        configuration.catalogFile = Repository.path("Config/models.yaml")
        let server = try GatewayApp(configuration: configuration, logger: Logger(label: "test"), gate: TestGate()).makeServer()
        let base = "http://127.0.0.1:\(try server.start().port)"
        for index in 0..<5 { #expect(try await Self.curl(["-X", "MADEUP\(index)", "\(base)/health"]).status == 405) }
        #expect(try await Self.curl(["\(base)/health"]).status == 200)
        let metrics = PrometheusText(try await Self.curl(["\(base)/metrics"]).body)
        #expect(metrics.value("sdgate_http_requests_total", ["method": "other", "route": "unmatched", "status": "405"]) == 5)
        #expect(metrics.value("sdgate_http_requests_total", ["method": "GET", "route": "/health", "status": "200"]) == 1)
        #expect(!metrics.values.keys.contains { $0.labels["method"]?.hasPrefix("MADEUP") == true })
        await server.shutdown()
    }

    /// A histogram's buckets rise to `count` at +Inf, and `_count` says the same.
    static func expectHistogram(
        _ metrics: PrometheusText, _ name: String, _ labels: [String: String], count: Double,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let buckets = metrics.buckets(name, labels)
        #expect(buckets.last?.le == .infinity && buckets.last?.count == count, "\(name) \(labels): \(buckets)", sourceLocation: sourceLocation)
        #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0.count <= $1.count }, "cumulative", sourceLocation: sourceLocation)
        #expect(metrics.value(name + "_count", labels) == count, sourceLocation: sourceLocation)
        #expect(metrics.value(name + "_sum", labels) ?? -1 >= 0, sourceLocation: sourceLocation)
    }

    struct Answer: Sendable {
        let status: Int
        let headers: [String: String]
        let body: String
    }

    /// curl's view of one exchange: the status, the last head's fields (lowercased names), the body.
    static func curl(_ arguments: [String]) async throws -> Answer {
        let folder = Scratch.path("curl")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let head = folder.appendingPathComponent("head").path, body = folder.appendingPathComponent("body").path
        let result = try await Command.run("curl", ["-sS", "-D", head, "-o", body] + arguments)
        #expect(result.status == 0, "\(result.errors)")
        let blocks = (try? String(contentsOfFile: head, encoding: .utf8))?.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty } ?? []
        let lines = blocks.last?.components(separatedBy: "\r\n") ?? []
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        return Answer(status: status, headers: headers, body: (try? String(contentsOfFile: body, encoding: .utf8)) ?? "")
    }

    static func segmind(_ base: String, key: String?, body: String) async throws -> Answer {
        try await curl(
            (key.map { ["-H", "x-api-key: \($0)"] } ?? []) + [
                "-H", "Content-Type: application/json", "-d", body,
                "\(base)/v1/sdxl1.0-txt2img",
            ])
    }

    static func scrape(_ base: String) async throws -> PrometheusText {
        PrometheusText(try await curl(["-H", "Authorization: Bearer \(scrapeToken)", "\(base)/metrics"]).body)
    }
}
