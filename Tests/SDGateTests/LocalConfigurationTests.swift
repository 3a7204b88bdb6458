import Foundation
import GatewayAPI
import LocalInference
import TestSupport
import Testing

@testable import SDGateApp

/// `local.*` and `local` in routes: the workers `serve` spawns or reaches, checked together with the routes.
@Suite("Local workers configuration")
struct LocalConfigurationTests {
    @Test func theLocalSectionComesFromTheFileAndTheEnvironment() throws {
        let configuration = try ConfigurationTests.load(
            """
            local:
              python: .venv/bin/python
              models_file: /srv/models.yaml
              gpus: 0, 1, GPU-8f3a
              worker_arguments: --dtype float16  --preload sdxl-img2img
              remote_workers: http://gpu-2:7000, http://10.0.0.3:7001
              queue_limit: 10
              queue_limit_per_key: 2
              deadline: 90s
              health_check_timeout: 2s
              spill_over_queue: 4
            routes:
              sdxl-img2img: local
            """, environment: ["SDGATE_LOCAL_MAX_WAIT": "30s"])
        let local = configuration.local
        #expect(local.spawnCount == 3 && local.remoteWorkers == ["http://gpu-2:7000", "http://10.0.0.3:7001"])
        #expect(local.pool.queueLimit == 10 && local.pool.queueLimitPerKey == 2 && local.pool.deadline == .seconds(90))
        #expect(local.pool.maxWait == .seconds(30) && local.pool.healthCheckTimeout == .seconds(2) && local.spillOverQueue == 4)
        let commands = local.commands
        #expect(commands.map(\.visibleDevices) == ["0", "1", "GPU-8f3a"])
        #expect(
            commands.allSatisfy { $0.extraArguments == ["--dtype", "float16", "--preload", "sdxl-img2img"] && $0.modelsFile == "/srv/models.yaml" })
        // The workers run in their own folder: relative paths are made absolute from the gateway's.
        let here = FileManager.default.currentDirectoryPath
        #expect(commands.first?.python == URL(fileURLWithPath: here).appendingPathComponent(".venv/bin/python").path)
        #expect(commands.first?.workerFolder == URL(fileURLWithPath: here).appendingPathComponent("Worker").path)
        #expect(configuration.rendered.contains("local.spill_over_queue: 4\n"))
    }

    @Test func withoutGPUsWorkersSetsHowManyAndNoneIsTheDefault() throws {
        #expect(GatewayConfiguration().local.isConfigured == false)
        let configuration = try ConfigurationTests.load("local:\n  workers: 2\n  models_file: m.yaml\n")
        #expect(configuration.local.commands.map(\.visibleDevices) == [nil, nil])
        #expect(GatewayConfiguration().rendered.contains("local.spill_over_queue: (never)"))
    }

    @Test func mistakesAreReportedWithTheirLines() {
        #expect(ConfigurationTests.problem("local:\n  workers: 2\n") == "test.yaml:2: local.models_file: is required to spawn workers")
        #expect(
            ConfigurationTests.problem("local:\n  models_file: m.yaml\n  workers: 3\n  gpus: 0, 1\n")?
                .hasPrefix("test.yaml:3: local.workers: 3 workers but 2 gpus") == true)
        #expect(ConfigurationTests.problem("local:\n  gpus: 0; 1\n")?.hasPrefix("test.yaml:2: local.gpus: expected GPU indices") == true)
        #expect(
            ConfigurationTests.problem("local:\n  remote_workers: gpu-2:7000\n")?.hasPrefix(
                "test.yaml:2: local.remote_workers: expected worker addresses") == true)
        #expect(
            ConfigurationTests.problem("local:\n  spill_over_queue: some\n")
                == "test.yaml:2: local.spill_over_queue: expected a whole number, got 'some'")
        #expect(
            ConfigurationTests.problem("routes:\n  sdxl-img2img: local\n")
                == "test.yaml:2: routes.sdxl-img2img: 'local' has no workers; set local.workers, local.gpus or local.remote_workers")
        #expect(ConfigurationTests.problem("routes:\n  sdxl-img2img: local, local\n") == "test.yaml:2: routes.sdxl-img2img: names a backend twice")
        #expect(
            ConfigurationTests.problem("upstreams:\n  local:\n    dialect: segmind\n")?.contains("'local' is the name of the local workers") == true)
    }

    @Test func serveRefusesToStartWithoutTheWorkerOrItsModelsFile() async throws {
        let environment = try ProxiedGateway.environment(
            upstreams: [], routes: ["sdxl-img2img": ["local"]],
            extraYAML: "local:\n  workers: 1\n  worker_dir: /nonexistent\n  models_file: /nonexistent/models.yaml\n")
        let check = try await RunningGateway.run(["config", "check"], environment: environment)
        #expect(check.status != 0)
        #expect(check.errors.contains("local.worker_dir: no sdgate_worker package in '/nonexistent'"), "\(check.errors)")
        #expect(check.errors.contains("local.models_file: '/nonexistent/models.yaml' cannot be read"))
        let serve = try await RunningGateway.run(["serve", "--port", "0"], environment: environment)
        #expect(serve.status != 0)
        #expect((serve.output + serve.errors).contains("no sdgate_worker package"))
    }
}
