import Foundation
import TestSupport
import Testing

/// `sdgate serve` with its own worker processes on the tiny pipelines (see `TinyModels`), routing
/// models to `local`, and the ways a test looks at those workers: their process ids and the
/// requests waiting for them, from the log.
extension ProxiedGateway {
    /// Models routed to the local workers unless a test routes them otherwise.
    static let allLocal = ["sd1.5-img2img", "sdxl-img2img", "sdxl1.0-txt2img", "sd3-med-img2img"].reduce(into: [String: [String]]()) {
        $0[$1] = ["local"]
    }

    /// Starts the gateway with `workers` spawned workers (plus the `local:` lines in `extraLocal`)
    /// and waits until they are up. Debug logging shows requests waiting for a worker.
    static func startLocal(
        workers: Int = 1, routes: [String: [String]] = allLocal, extraLocal: [String] = [],
        upstreams: [UpstreamEntry] = [], catalog: String? = nil, workerArguments: String = "--device cpu --threads 1",
        environment extraEnvironment: [String: String] = [:]
    ) async throws -> ProxiedGateway {
        let lines =
            workers == 0
            ? extraLocal
            : [
                "python: \(TinyModels.python)",
                "worker_dir: \(Repository.path("Worker"))",
                "models_file: \(try await TinyModels.modelsFile)",
                "workers: \(workers)",
                "worker_arguments: \(workerArguments)",
            ] + extraLocal
        let yaml = "local:\n" + lines.map { "  \($0)\n" }.joined() + "log:\n  level: debug\n"
        var environment = try Self.environment(
            upstreams: upstreams, routes: routes, extraYAML: yaml,
            base: extraEnvironment.merging(["OMP_NUM_THREADS": "1"]) { $1 })
        if let catalog { environment["SDGATE_CATALOG_FILE"] = catalog }
        let gateway = try await Self.start(environment: environment)
        let up = await eventually(timeout: .seconds(180)) { gateway.workerProcesses.count >= workers }
        #expect(up, "the workers did not come up:\n\(gateway.log)")
        return gateway
    }

    /// The process id of every worker life announced so far ("worker up ... pid=N"), in order.
    var workerProcesses: [Int32] {
        log.split(separator: "\n").filter { $0.contains("worker up") }.compactMap { line in
            line.firstRange(of: "pid=").flatMap { Int32(line[$0.upperBound...].prefix { $0.isNumber }) }
        }
    }

    /// Where each worker life announced so far listens ("worker up ... url=http://..."), in order.
    var workerURLs: [String] {
        log.split(separator: "\n").filter { $0.contains("worker up") }.compactMap { line in
            line.firstRange(of: "url=").map { String(line[$0.upperBound...].prefix { !$0.isWhitespace }) }
        }
    }

    /// How many requests of the key with `id` have waited for a worker so far.
    func waits(of id: String) -> Int {
        log.split(separator: "\n").filter { $0.contains("waiting for a worker") && $0.contains("key.id=\(id)") }.count
    }
}
