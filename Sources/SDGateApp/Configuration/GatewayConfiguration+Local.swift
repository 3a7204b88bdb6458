import Foundation
package import LocalInference

extension GatewayConfiguration {
    /// The team's own workers (`local.*`): the processes `serve` spawns, the remote workers it
    /// uses, and the pool's queue and health settings. A route names them `local`.
    package struct LocalWorkers: Sendable {
        /// The Python that has the worker's stack, and the folder holding the `sdgate_worker` package.
        package var python = "python3"
        package var workerFolder = "Worker"
        /// The worker's models file; required to spawn workers.
        package var modelsFile = ""
        /// Workers to spawn when `gpus` is empty (CPU workers, or workers sharing the visible GPUs).
        package var workers = 0
        /// One worker per entry, each seeing only that GPU (`CUDA_VISIBLE_DEVICES`).
        package var gpus: [String] = []
        /// Flags added to every spawned worker's command line (`--dtype float16 --preload sdxl-img2img`).
        package var workerArguments: [String] = []
        /// Workers on other hosts, `http://host:port`.
        package var remoteWorkers: [String] = []
        /// The environment variable holding the token the remote workers want; the workers `serve`
        /// spawns get a new one each.
        package var remoteWorkerTokenVariable: String?
        package var pool = LocalBackend.Settings()
        /// When more requests than this wait for a local worker, a model whose route names an
        /// upstream after `local` is sent there; nil: never.
        package var spillOverQueue: Int?

        package init() {}

        /// The worker processes `serve` spawns: one per GPU, or `workers` of them.
        package var spawnCount: Int { gpus.isEmpty ? workers : gpus.count }

        /// The remote workers' token, read from the environment (never from a file that may be shared).
        package var remoteWorkerToken: String? {
            remoteWorkerTokenVariable.flatMap { ProcessInfo.processInfo.environment[$0] }.flatMap { $0.isEmpty ? nil : $0 }
        }

        /// Whether `local` can serve anything: workers to spawn or to reach.
        package var isConfigured: Bool { spawnCount > 0 || !remoteWorkers.isEmpty }

        /// The commands that start the spawned workers. Relative paths are taken from the current
        /// folder, since the workers run in their own.
        package var commands: [WorkerCommand] {
            let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            func absolute(_ path: String) -> String { URL(fileURLWithPath: path, relativeTo: here).standardized.path }
            let executable = python.contains("/") ? absolute(python) : python
            let devices: [String?] = gpus.isEmpty ? Array(repeating: nil, count: workers) : gpus
            return devices.map {
                WorkerCommand(
                    python: executable, workerFolder: absolute(workerFolder), modelsFile: absolute(modelsFile), visibleDevices: $0,
                    extraArguments: workerArguments)
            }
        }

        /// What stops spawning: the worker's package or the models file missing.
        package var missingFiles: [String] {
            guard spawnCount > 0 else { return [] }
            var problems: [String] = []
            if !FileManager.default.fileExists(atPath: workerFolder + "/sdgate_worker/__main__.py") {
                problems.append("local.worker_dir: no sdgate_worker package in '\(workerFolder)'")
            }
            if !FileManager.default.fileExists(atPath: modelsFile) {
                problems.append("local.models_file: '\(modelsFile)' cannot be read")
            }
            return problems
        }
    }
}

extension GatewayConfiguration {
    /// The variables of `environment` that may hold the gateway's secrets, which no worker it spawns
    /// gets: the gateway's own settings (`SDGATE_*`: the admin and metrics tokens, the database URL
    /// with its password, ...), the upstreams' keys and the remote workers' token.
    package func secretVariables(in environment: [String: String]) -> [String] {
        let own = environment.keys.filter { $0.hasPrefix("SDGATE_") }
        return Set(own + secretSources).sorted()
    }

    /// The variables the configuration names as a secret's source: the upstreams' keys and the
    /// remote workers' token.
    var secretSources: [String] {
        upstreams.values.compactMap(\.keyVariable) + [local.remoteWorkerTokenVariable].compactMap { $0 }
    }
}
