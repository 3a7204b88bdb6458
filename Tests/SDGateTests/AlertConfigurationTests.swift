import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import SDGateApp

/// `alerts.*`: the operator's receivers, secret and thresholds, each checked as it is loaded.
@Suite("Alerts configuration")
struct AlertConfigurationTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    @Test func alertsComeFromTheFileAndTheEnvironmentAndAreOffWithoutAURL() throws {
        let off = try ConfigurationTests.load(nil)
        #expect(!off.alerts.isEnabled && off.alerts.thresholds == [80, 100] && off.alerts.upstreamLowCredits == nil)
        let configuration = try ConfigurationTests.load(
            """
            alerts:
              urls: http://127.0.0.1:9000/hooks, https://alerts.example/sdgate
              thresholds: 50, 90, 100
              upstream_low_credits: 12.5
            """, environment: ["SDGATE_ALERTS_SECRET": Self.secret])
        let alerts = configuration.alerts
        #expect(alerts.isEnabled && alerts.urls == ["http://127.0.0.1:9000/hooks", "https://alerts.example/sdgate"])
        #expect(alerts.secret == Self.secret && alerts.thresholds == [50, 90, 100] && alerts.upstreamLowCredits == Credits(decimal: "12.5"))
        #expect(configuration.rendered.contains("alerts.secret: (set, redacted)") && !configuration.rendered.contains(Self.secret))
        // A receiver's path may be its secret (a chat service's incoming webhook): the host only.
        #expect(
            configuration.rendered.contains("alerts.urls: http://127.0.0.1:9000/(redacted), https://alerts.example/(redacted)"),
            "\(configuration.rendered)")
    }

    @Test func badValuesAreReportedWithTheirLines() {
        func problem(_ yaml: String) -> String? { ConfigurationTests.problem("alerts:\n" + yaml, environment: ["SDGATE_ALERTS_SECRET": Self.secret]) }
        #expect(problem("  urls: ftp://alerts.example\n")?.hasPrefix("test.yaml:2: alerts.urls: expected http(s) URLs") == true)
        #expect(problem("  urls: http://user:pw@alerts.example/\n")?.hasPrefix("test.yaml:2: alerts.urls: expected http(s) URLs") == true)
        #expect(
            problem("  urls: http://alerts.example:99999/\n")
                == "test.yaml:2: alerts.urls: the port of 'http://alerts.example:99999/' must be 1 to 65535")
        #expect(
            problem("  thresholds: 100, 80\n") == "test.yaml:2: alerts.thresholds: expected percentages in ascending order, each once, got '100, 80'")
        #expect(problem("  thresholds: 80, 80\n")?.contains("ascending order, each once") == true)
        #expect(problem("  thresholds: 0\n") == "test.yaml:2: alerts.thresholds: must be between 1 and 100, got 0")
        #expect(problem("  thresholds: 80, 150\n") == "test.yaml:2: alerts.thresholds: must be between 1 and 100, got 150")
        #expect(problem("  thresholds: eighty\n") == "test.yaml:2: alerts.thresholds: expected a whole number, got 'eighty'")
        #expect(problem("  upstream_low_credits: -5\n")?.hasPrefix("test.yaml:2: alerts.upstream_low_credits: expected a positive number") == true)
        #expect(problem("  upstream_low_credits: lots\n")?.hasPrefix("test.yaml:2: alerts.upstream_low_credits: expected a positive number") == true)
        #expect(
            ConfigurationTests.problem("alerts:\n  secret: hunter2\n")
                == "test.yaml:2: alerts.secret: expected whsec_ and the base64 of at least 16 random bytes")
        #expect(ConfigurationTests.problem("alerts:\n  secret: whsec_c2hvcnQ=\n")?.contains("at least 16 random bytes") == true)
        #expect(
            ConfigurationTests.problem("alerts:\n  urls: http://127.0.0.1:9000/\n")
                == "test.yaml:2: alerts.secret: is required with alerts.urls (a whsec_ secret; prefer SDGATE_ALERTS_SECRET)")
    }

    @Test func serveRefusesABadAlertValueWithAClearError() async throws {
        let environment = try ProxiedGateway.environment(
            upstreams: [], routes: [:], extraYAML: "alerts:\n  urls: http://127.0.0.1:9/\n  thresholds: 90, 80\n",
            base: ["SDGATE_ALERTS_SECRET": "whsec_nope"])
        let serve = try await RunningGateway.run(["serve", "--port", "0"], environment: environment)
        #expect(serve.status != 0)
        let said = serve.output + serve.errors
        #expect(said.contains("SDGATE_ALERTS_SECRET: alerts.secret: expected whsec_ and the base64 of at least 16 random bytes"), "\(said)")
        #expect(!said.contains("listening"))
    }
}
