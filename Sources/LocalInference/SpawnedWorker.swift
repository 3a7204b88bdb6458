import Foundation
import Subprocess
import SystemPackage

/// How to start one worker process: `python3 -m sdgate_worker --models FILE --listen 127.0.0.1:0`,
/// run from the worker's folder, with the GPUs it may see.
public struct WorkerCommand: Sendable {
    public var python: String
    /// The folder that holds the `sdgate_worker` package.
    public var workerFolder: String
    public var modelsFile: String
    /// `CUDA_VISIBLE_DEVICES` for this worker; nil leaves the variable as it is.
    public var visibleDevices: String?
    public var extraArguments: [String]

    public init(python: String = "python3", workerFolder: String, modelsFile: String, visibleDevices: String? = nil,
                extraArguments: [String] = []) {
        self.python = python
        self.workerFolder = workerFolder
        self.modelsFile = modelsFile
        self.visibleDevices = visibleDevices
        self.extraArguments = extraArguments
    }
}

/// Runs one worker process until it ends or the calling task is cancelled (then SIGTERM): reports
/// its address from the one line it prints when it listens, and returns its exit status. Its
/// standard error (its log) goes to the gateway's.
enum SpawnedWorker {
    static let listeningPrefix = "sdgate-worker listening on "

    static func run(_ command: WorkerCommand, listening: @escaping @Sendable (String) -> Void) async throws -> Int32 {
        var environment: [Environment.Key: String?] = ["PYTHONUNBUFFERED": "1"]
        if let devices = command.visibleDevices { environment["CUDA_VISIBLE_DEVICES"] = devices }
        let arguments = ["-m", "sdgate_worker", "--models", command.modelsFile, "--listen", "127.0.0.1:0"] + command.extraArguments
        let result = try await Subprocess.run(
            command.python.hasPrefix("/") ? .path(FilePath(command.python)) : .name(command.python),
            arguments: Arguments(arguments), environment: .inherit.updating(environment),
            workingDirectory: FilePath(command.workerFolder), input: .none, output: .sequence,
            error: .fileDescriptor(.standardError, closeAfterSpawningProcess: false)
        ) { execution in
            let output = Task {
                // Ends when the process closes its output, that is when it ends.
                for try await line in execution.standardOutput.strings() where line.hasPrefix(listeningPrefix) {
                    listening("http://" + line.dropFirst(listeningPrefix.count).trimmingCharacters(in: .whitespacesAndNewlines))
                }
            }
            await withTaskCancellationHandler {
                _ = await output.result
            } onCancel: {
                try? execution.send(signal: .terminate)
            }
        }
        switch result.terminationStatus {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }
}
