import Foundation
import GatewayAPI
import TestSupport
import Testing
import UpstreamProxy

@testable import SDGateApp

/// `upstreams.<name>.*` and `routes.<model>`: from the file and the environment, checked together,
/// the keys read from the variables the file names and never shown.
@Suite("Upstream configuration")
struct UpstreamConfigurationTests {
    static let yaml = """
        upstreams:
          segmind:
            dialect: segmind
            base_url: https://api.segmind.com/
            key_env: SEGMIND_API_KEY
            deadline: 90s
          modelslab:
            dialect: modelslab
            base_url: https://user:hunter2@stablediffusionapi.com
            key_env: MODELSLAB_API_KEY
            pool_size: 2
        routes:
          sdxl-img2img: segmind, modelslab
          sd1.5-img2img: modelslab
        """

    @Test func upstreamsAndRoutesComeFromTheFileWithTheirKeysFromTheEnvironment() throws {
        let configuration = try ConfigurationTests.load(Self.yaml, environment: ["SEGMIND_API_KEY": "SG_team", "MODELSLAB_API_KEY": "ml_team"])
        let upstreams = configuration.configuredUpstreams
        #expect(upstreams.map(\.name) == ["modelslab", "segmind"])
        let segmind = try #require(upstreams.last)
        #expect(segmind.dialect == .segmind && segmind.baseURL == "https://api.segmind.com" && segmind.key.secret == "SG_team")
        #expect(segmind.deadline == .seconds(90) && segmind.poolSize == 8)
        #expect(upstreams.first?.poolSize == 2 && upstreams.first?.deadline == .seconds(120))
        #expect(configuration.routes == ["sdxl-img2img": ["segmind", "modelslab"], "sd1.5-img2img": ["modelslab"]])
        #expect(configuration.missingUpstreamKeys.isEmpty)
    }

    @Test func checkPrintsTheKeyVariablesNamesButNeverTheKeysOrAPassword() throws {
        let configuration = try ConfigurationTests.load(Self.yaml, environment: ["SEGMIND_API_KEY": "SG_team"])
        let rendered = configuration.rendered
        #expect(rendered.contains("upstreams.segmind.key_env: SEGMIND_API_KEY (set, redacted)\n"))
        #expect(rendered.contains("upstreams.modelslab.key_env: MODELSLAB_API_KEY (not set)\n"))
        #expect(rendered.contains("upstreams.modelslab.base_url: https://user:redacted@stablediffusionapi.com\n"))
        #expect(rendered.contains("routes.sdxl-img2img: segmind, modelslab"))
        #expect(!rendered.contains("SG_team") && !rendered.contains("hunter2"))
        let key = try #require(configuration.upstreams["segmind"]?.key)
        #expect("\(key)" == "(redacted)" && String(reflecting: key) == "(redacted)")
        #expect(configuration.missingUpstreamKeys == ["upstreams.modelslab.key_env: the environment variable MODELSLAB_API_KEY is not set"])
    }

    @Test func theEnvironmentSetsUpstreamsAndRoutesByName() throws {
        let configuration = try ConfigurationTests.load(
            nil,
            environment: [
                "SDGATE_UPSTREAMS_EU_DIALECT": "modelslab", "SDGATE_UPSTREAMS_EU_BASE_URL": "http://127.0.0.1:9000",
                "SDGATE_UPSTREAMS_EU_KEY_ENV": "EU_KEY", "EU_KEY": "secret", "SDGATE_ROUTES_SD1_5_IMG2IMG": "eu",
            ])
        #expect(configuration.configuredUpstreams.map(\.name) == ["eu"])
        let catalog = try ModelCatalog.load(file: Repository.path("Config/models.yaml"))
        #expect(try configuration.routes(in: catalog) == ["sd1.5-img2img": ["eu"]], "the variable's spelling names the catalog's model")
    }

    @Test func mistakesAreReportedWithTheirLines() throws {
        #expect(
            ConfigurationTests.problem("upstreams:\n  a:\n    dialect: openai\n")
                == "test.yaml:3: upstreams.a.dialect: must be one of segmind, modelslab")
        #expect(
            ConfigurationTests.problem("upstreams:\n  a:\n    base_url: ftp://x\n")?.hasPrefix("test.yaml:3: upstreams.a.base_url: expected an http")
                == true)
        #expect(
            ConfigurationTests.problem("upstreams:\n  a:\n    dialect: segmind\n") == """
                test.yaml:3: upstreams.a.base_url: is required
                test.yaml:3: upstreams.a.key_env: is required
                """)
        #expect(ConfigurationTests.problem("upstreams:\n  A:\n    dialect: segmind\n")?.contains("lowercase letters, digits and _") == true)
        // A port no socket can have passed the check, and the first routed request trapped.
        #expect(
            ConfigurationTests.problem("upstreams:\n  a:\n    base_url: http://127.0.0.1:99999\n")?.hasPrefix(
                "test.yaml:3: upstreams.a.base_url: the port of 'http://127.0.0.1:99999' must be 1 to 65535") == true)
        #expect(ConfigurationTests.problem("routes:\n  sdxl-img2img: nobody\n") == "test.yaml:2: routes.sdxl-img2img: no upstream named 'nobody'")
        #expect(ConfigurationTests.problem("upstreams:\n  a:\n    base_urls: x\n")?.contains("unknown key") == true)
    }

    @Test func aRouteForAModelTheCatalogLacksStopsConfigCheck() async throws {
        let environment = try ProxiedGateway.environment(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: "http://127.0.0.1:9", key: "k")], routes: ["sd9-img2img": ["segmind"]])
        let result = try await RunningGateway.run(["config", "check"], environment: environment)
        #expect(result.status != 0)
        #expect(result.errors.contains("routes.sd9-img2img: no model 'sd9-img2img'"), "\(result.errors)")
        var unset = environment
        unset["TEAM_KEY_SEGMIND"] = nil
        unset["SDGATE_CONFIG"] = try ProxiedGateway.environment(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: "http://127.0.0.1:9", key: "k")], routes: [:])["SDGATE_CONFIG"]
        let missing = try await RunningGateway.run(["serve", "--port", "0"], environment: unset)
        #expect(missing.status != 0)
        #expect((missing.output + missing.errors).contains("the environment variable TEAM_KEY_SEGMIND is not set"))
    }
}
