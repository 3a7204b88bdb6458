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
            ConfigurationTests.problem("local:\n  remote_workers: http://gpu-2:65536\n")
                == "test.yaml:2: local.remote_workers: the port of 'http://gpu-2:65536' must be 1 to 65535")
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

    /// A worker runs third-party code (weights, pipelines): it gets the gateway's token for it and
    /// the environment it needs to run, but none of the gateway's secrets. A stand-in for Python
    /// writes what it was given.
    @Test func aSpawnedWorkerGetsNoneOfTheGatewaysSecrets() async throws {
        let folder = Scratch.path("worker")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sdgate_worker"), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("sdgate_worker/__main__.py").path, contents: nil)
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("models.yaml").path, contents: nil)
        let python = folder.appendingPathComponent("python")
        try "#!/bin/sh\nenv > environment.part && mv environment.part environment\nexec sleep 30\n".write(
            to: python, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python.path)
        let secrets = [
            "SDGATE_ADMIN_TOKEN": "admin-secret-0123456789", "SDGATE_METRICS_TOKEN": "metrics-secret-0123456789",
            "REMOTE_WORKERS_TOKEN": "remote-secret-0123456789",
        ]
        let environment = try ProxiedGateway.environment(
            upstreams: [.init(name: "seg", dialect: "segmind", baseURL: "http://127.0.0.1:9", key: "upstream-secret-0123456789")],
            routes: ["sdxl-img2img": ["local", "seg"]],
            extraYAML: """
                local:
                  python: \(python.path)
                  worker_dir: \(folder.path)
                  models_file: \(folder.appendingPathComponent("models.yaml").path)
                  workers: 1
                  remote_worker_token_env: REMOTE_WORKERS_TOKEN

                """, base: secrets.merging(["HF_HOME": "/srv/hf-cache"]) { $1 })
        let gateway = try await ProxiedGateway.start(environment: environment)
        let written = folder.appendingPathComponent("environment")
        #expect(await eventually(timeout: .seconds(60)) { FileManager.default.fileExists(atPath: written.path) }, "\(gateway.log)")
        _ = try await gateway.stop()
        let seen = try String(contentsOf: written, encoding: .utf8)
        for secret in Array(secrets.values) + ["upstream-secret-0123456789"] {
            #expect(!seen.contains(secret), "the worker saw \(secret)")
        }
        // None of the gateway's settings (its data folder, its configuration file...) but the token.
        let lines = seen.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("SDGATE_") }.map { $0.prefix { $0 != "=" } } == ["SDGATE_WORKER_TOKEN"], "\(seen)")
        #expect(lines.contains("HF_HOME=/srv/hf-cache") && lines.contains { $0.hasPrefix("PATH=") }, "what it needs to run")
    }
}
