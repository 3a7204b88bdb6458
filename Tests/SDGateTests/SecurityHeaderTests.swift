import Foundation
import TestSupport
import Testing

/// Headers that keep secrets out of caches and browsers on HTTPS, on the real `sdgate serve`.
@Suite("Security headers", .serialized)
struct SecurityHeaderTests {
    static let bearer = ["-H", "Authorization: Bearer proxy-test-admin-token"]

    /// The admin API's answers carry key secrets and the team's accounts: no cache may keep them,
    /// refusals included. The admin page's files keep their own revalidation rule.
    @Test func everyAdminAPIAnswerSaysNoStore() async throws {
        // HSTS is configured but the gateway speaks plain HTTP: it is not sent (browsers ignore it there).
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(environment: try Self.environment(upstream, "server:\n  tls:\n    hsts_max_age: 24h\n"))
        let admin = "http://127.0.0.1:\(gateway.port)/admin"

        let created = try await MetricsTests.curl(Self.bearer + ["-d", #"{"name":"nia","credits":"1"}"#, "\(admin)/keys"])
        #expect(created.status == 201 && created.body.contains("secret"), "\(created)")
        #expect(created.headers["cache-control"] == "no-store", "the answer that shows a key's secret: \(created.headers)")
        for (arguments, status) in [
            (Self.bearer + ["\(admin)/keys"], 200), (Self.bearer + ["\(admin)/usage"], 200),
            (["\(admin)/keys"], 401), (Self.bearer + ["\(admin)/keys/nope"], 404),
        ] {
            let answer = try await MetricsTests.curl(arguments)
            #expect(answer.status == status, "\(arguments): \(answer)")
            #expect(answer.headers["cache-control"] == "no-store", "\(arguments): \(answer.headers)")
            #expect(answer.headers["strict-transport-security"] == nil)
        }
        #expect(try await MetricsTests.curl(["\(admin)/"]).headers["cache-control"] == "no-cache")
        #expect(try await MetricsTests.curl(["http://127.0.0.1:\(gateway.port)/health"]).headers["cache-control"] == nil)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    static func environment(_ upstream: FakeSegmindUpstream, _ extraYAML: String) throws -> [String: String] {
        try ProxiedGateway.environment(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: extraYAML)
    }

    @Test func hstsIsSentOverHTTPSOnlyWhenConfigured() async throws {
        let identity = try await SelfSignedCertificate.make()
        let upstream = try FakeSegmindUpstream()
        let tls = "server:\n  tls:\n    certificate: \(identity.certificateFile)\n    private_key: \(identity.privateKeyFile)\n"
        for (extra, expected) in [("", nil), ("    hsts_max_age: 4320h\n", "max-age=15552000")] {
            let gateway = try await ProxiedGateway.start(environment: try Self.environment(upstream, tls + extra))
            let base = "https://127.0.0.1:\(gateway.port)"
            for path in ["/health", "/admin/keys"] {
                let answer = try await MetricsTests.curl(["--cacert", identity.certificateFile, base + path])
                #expect(answer.status != 0, "\(answer)")
                #expect(answer.headers["strict-transport-security"] == expected, "\(path) with '\(extra)': \(answer.headers)")
            }
            #expect(try await gateway.stop() == 0)
        }
        await upstream.shutdown()
    }
}
