import Foundation
import Subprocess
import Synchronization
import SystemPackage

/// How to start one worker process: `python3 -m sdgate_worker --models FILE --listen 127.0.0.1:0`,
/// run from the worker's folder, with the GPUs it may see.
package struct WorkerCommand: Sendable {
    package var python: String
    /// The folder that holds the `sdgate_worker` package.
    package var workerFolder: String
    package var modelsFile: String
    /// `CUDA_VISIBLE_DEVICES` for this worker; nil leaves the variable as it is.
    package var visibleDevices: String?
    package var extraArguments: [String]
    /// Variables of the gateway's environment the worker does not get: the gateway's secrets (its
    /// admin token, its database's password, the upstreams' keys). A worker runs third-party code
    /// (weights, pipelines), and all it needs of the gateway is the token that lets the gateway in.
    package var withheldVariables: [String] = []

    /// The worker reads its token from here: an argument would show in every `ps`.
    package static let tokenVariable = "SDGATE_WORKER_TOKEN"

    package init(
        python: String = "python3", workerFolder: String, modelsFile: String, visibleDevices: String? = nil,
        extraArguments: [String] = []
    ) {
        self.python = python
        self.workerFolder = workerFolder
        self.modelsFile = modelsFile
        self.visibleDevices = visibleDevices
        self.extraArguments = extraArguments
    }
}

/// A worker that listens at `url`: a process of ours, or one on another host (no process id).
struct ListeningWorker: Sendable {
    let url: String
    let processIdentifier: Int32?
    /// What the worker wants in `Authorization: Bearer`; nil for a worker that asks for none.
    let token: String?
}

/// Runs one worker process until it ends. Once the worker prints the one line that says where it
/// listens, `watch` runs; when `watch` returns (the worker is unhealthy) the process is killed.
/// When the calling task is cancelled, the worker gets SIGTERM, and SIGKILL after `stopGracePeriod`.
/// Returns the exit status; the worker's standard error (its log) goes to the gateway's.
enum SpawnedWorker {
    static let listeningPrefix = "sdgate-worker listening on "

    /// The URL of the `host:port` a worker says it listens on; nil for anything else, a port past
    /// 65535 among them, on which the HTTP client's socket address would trap.
    static func workerURL(_ address: String) -> String? {
        guard let parts = URLComponents(string: "http://" + address), parts.host?.isEmpty == false, let port = parts.port,
            (1...65_535).contains(port), parts.path.isEmpty, parts.query == nil, parts.user == nil
        else { return nil }
        return "http://" + address
    }

    /// A new secret for each process: whoever else reaches its port cannot generate.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(generator.next(), radix: 16) }.map { String(repeating: "0", count: 16 - $0.count) + $0 }.joined()
    }

    /// Runs the worker until it ends: `watch` from when it says where it listens; killed if it has
    /// not said so within `startTimeout` (a hung download or device), so that it is started again.
    static func run(
        _ command: WorkerCommand, stopGracePeriod: Duration, startTimeout: Duration,
        watch: @escaping @Sendable (ListeningWorker) async -> Void
    ) async throws -> Int32 {
        let token = newToken()
        var environment: [Environment.Key: String?] = [:]
        // A nil value unsets the variable the worker would inherit.
        for name in command.withheldVariables { environment.updateValue(nil, forKey: Environment.Key(stringLiteral: name)) }
        environment["PYTHONUNBUFFERED"] = "1"
        environment[Environment.Key(stringLiteral: WorkerCommand.tokenVariable)] = token
        if let devices = command.visibleDevices { environment["CUDA_VISIBLE_DEVICES"] = devices }
        // The worker watches the gateway's process, so that a gateway killed outright leaves no
        // worker holding a GPU.
        let arguments =
            [
                "-m", "sdgate_worker", "--models", command.modelsFile, "--listen", "127.0.0.1:0",
                "--exit-with-parent", "\(getpid())",
            ] + command.extraArguments
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: stopGracePeriod)]
        let result = try await Subprocess.run(
            command.python.hasPrefix("/") ? .path(FilePath(command.python)) : .name(command.python),
            arguments: Arguments(arguments), environment: .inherit.updating(environment),
            workingDirectory: FilePath(command.workerFolder), platformOptions: options, input: .none, output: .sequence,
            error: .fileDescriptor(.standardError, closeAfterSpawningProcess: false)
        ) { execution in
            let processIdentifier = execution.processIdentifier.value
            let listened = Listened()
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    try? await Task.sleep(for: startTimeout)
                    if !Task.isCancelled, !listened.value.load(ordering: .relaxed) { try? execution.send(signal: .kill) }
                }
                // The output ends when the process closes it, that is when it ends.
                do {
                    for try await line in execution.standardOutput.strings() where line.hasPrefix(listeningPrefix) {
                        guard let url = workerURL(line.dropFirst(listeningPrefix.count).trimmingCharacters(in: .whitespacesAndNewlines)) else {
                            // Not an address to connect to: a failed start, and the worker is started again.
                            try? execution.send(signal: .kill)
                            break
                        }
                        listened.value.store(true, ordering: .relaxed)
                        group.addTask {
                            await watch(ListeningWorker(url: url, processIdentifier: processIdentifier, token: token))
                            if !Task.isCancelled { try? execution.send(signal: .kill) }
                        }
                    }
                } catch {}
                group.cancelAll()
            }
        }
        switch result.terminationStatus {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }
}

/// Whether a worker has said where it listens, for its start's deadline.
private final class Listened: Sendable {
    let value = Atomic<Bool>(false)
}
