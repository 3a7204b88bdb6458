import Foundation
import LocalInference

/// `local.*`: the team's own workers. Lists are one value, comma-separated, as routes are.
extension ConfigurationKey {
    static let local: [ConfigurationKey] = [
        .string("local.python", \.local.python, "the Python that has the worker's stack"),
        .string("local.worker_dir", \.local.workerFolder, "the folder holding the sdgate_worker package"),
        ConfigurationKey(
            path: "local.models_file", summary: "the worker's models file (required to spawn workers)",
            apply: { config, text throws(ConfigurationValueError) in config.local.modelsFile = text },
            render: { $0.local.modelsFile.isEmpty ? "(none)" : $0.local.modelsFile }),
        .integer("local.workers", \.local.workers, 0...256, "worker processes to spawn when gpus is empty"),
        list("local.gpus", \.local.gpus, "one worker per entry, each seeing only that GPU (CUDA_VISIBLE_DEVICES)") {
            gpu throws(ConfigurationValueError) in
            guard gpu.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw ConfigurationValueError("expected GPU indices or UUIDs separated by commas, such as 0, 1, got '\(gpu)'")
            }
        },
        ConfigurationKey(
            path: "local.worker_arguments", summary: "flags added to every spawned worker's command line",
            apply: { config, text throws(ConfigurationValueError) in
                config.local.workerArguments = text.split(whereSeparator: \.isWhitespace).map(String.init)
            }, render: { $0.local.workerArguments.isEmpty ? "(none)" : $0.local.workerArguments.joined(separator: " ") }),
        list("local.remote_workers", \.local.remoteWorkers, "workers on other hosts, http://host:port") { url throws(ConfigurationValueError) in
            guard let parts = URLComponents(string: url), parts.scheme == "http", parts.host?.isEmpty == false, parts.port != nil,
                parts.path.isEmpty, parts.query == nil
            else {
                throw ConfigurationValueError("expected worker addresses such as http://gpu-host:7000 separated by commas, got '\(url)'")
            }
            try ConfigurationValue.checkPort(of: parts, in: url)
        },
        ConfigurationKey(
            path: "local.remote_worker_token_env",
            summary: "the environment variable holding the token the remote workers want (their SDGATE_WORKER_TOKEN)",
            apply: { config, text throws(ConfigurationValueError) in config.local.remoteWorkerTokenVariable = text.isEmpty ? nil : text },
            render: { $0.local.remoteWorkerTokenVariable ?? "(none)" }),
        .integer("local.queue_limit", \.local.pool.queueLimit, 0...100_000, "requests that may wait for a local worker (503 beyond)"),
        .integer("local.queue_limit_per_key", \.local.pool.queueLimitPerKey, 0...100_000, "requests of one key that may wait (503 beyond)"),
        .duration("local.max_wait", \.local.pool.maxWait, .seconds(1) ... .seconds(86400), "the longest a request waits for a worker (503 beyond)"),
        .duration(
            "local.deadline", \.local.pool.deadline, .seconds(1) ... .seconds(86400), "the most one generation may take on a worker (504 beyond)"),
        .duration(
            "local.max_restart_delay", \.local.pool.maxRestartDelay, .seconds(1) ... .seconds(3600),
            "the longest pause between restarts of a worker that keeps dying"),
        .duration(
            "local.start_timeout", \.local.pool.startTimeout, .seconds(1) ... .seconds(86400),
            "how long a spawned worker may take to start listening (loading its weights); killed and restarted beyond"),
        .duration(
            "local.health_check_interval", \.local.pool.healthCheckInterval, .milliseconds(100) ... .seconds(3600),
            "how often each worker's health is checked"),
        .duration(
            "local.health_check_timeout", \.local.pool.healthCheckTimeout, .milliseconds(100) ... .seconds(600),
            "how long a health check may take; three failures in a row restart a spawned worker"),
        ConfigurationKey(
            path: "local.spill_over_queue", summary: "send a model to its route's next upstream when more requests than this wait",
            apply: { config, text throws(ConfigurationValueError) in
                config.local.spillOverQueue = try ConfigurationValue.integer(text, in: 0...100_000)
            }, render: { $0.local.spillOverQueue.map(String.init) ?? "(never)" }),
    ]

    /// A comma-separated list, each entry checked.
    /// `shown`: how `config check` prints an entry.
    static func list(
        _ path: String, _ keyPath: ConfigurationField<[String]>, _ summary: String, shown: @escaping @Sendable (String) -> String = { $0 },
        check: @escaping @Sendable (String) throws(ConfigurationValueError) -> Void
    ) -> Self {
        Self(
            path: path, summary: summary,
            apply: { config, text throws(ConfigurationValueError) in
                let entries = text.split(separator: ",").map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
                for entry in entries { try check(entry) }
                config[keyPath: keyPath] = entries
            }, render: { config in config[keyPath: keyPath].isEmpty ? "(none)" : config[keyPath: keyPath].map(shown).joined(separator: ", ") })
    }
}

extension ConfigurationLoader {
    /// What the local keys cannot check one value at a time.
    static func checkLocal(_ configuration: GatewayConfiguration, origins: [String: String]) -> [String] {
        let local = configuration.local
        func origin(_ path: String) -> String { origins[path] ?? origins.filter { $0.key.hasPrefix("local.") }.min { $0.key < $1.key }?.value ?? "" }
        var problems: [String] = []
        if !local.gpus.isEmpty, local.workers != 0, local.workers != local.gpus.count {
            problems.append(
                "\(origin("local.workers")): local.workers: \(local.workers) workers but \(local.gpus.count) gpus; "
                    + "with gpus, one worker runs per GPU (leave workers at 0)")
        }
        if let variable = local.remoteWorkerTokenVariable, !local.remoteWorkers.isEmpty, local.remoteWorkerToken == nil {
            problems.append(
                "\(origin("local.remote_worker_token_env")): local.remote_worker_token_env: the environment variable \(variable) is not set")
        }
        if local.spawnCount > 0, local.modelsFile.isEmpty {
            problems.append("\(origin("local.workers")): local.models_file: is required to spawn workers")
        }
        for (model, names) in configuration.routes.sorted(by: { $0.key < $1.key })
        where names.contains(GatewayConfiguration.localRoute) && !local.isConfigured {
            problems.append(
                "\(origins["routes.\(model)"] ?? ""): routes.\(model): 'local' has no workers; set local.workers, local.gpus or local.remote_workers")
        }
        return problems
    }
}
