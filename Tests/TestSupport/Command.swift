package import Foundation
import Subprocess
import SystemPackage

/// Runs programs for tests: a client to completion (`run`), or sdgate itself in the background
/// (`start`), without blocking a thread of the cooperative pool.
package enum Command {
    package struct Result: Sendable {
        /// The exit code, or 128 + the signal that ended the program.
        package var status: Int32
        package var output: String
        package var errors: String
    }

    /// Runs `executable` (a path, or a name looked up in PATH) to completion and collects its output.
    package static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> Result {
        try await runToCompletion(Self.executable(executable), Arguments(arguments), Self.environment(environment))
    }

    /// A program running in the background, its standard output and error going to `logFile`.
    package final class Background: Sendable {
        package let processIdentifier: Int32
        package let logFile: URL
        private let stopSignal: AsyncStream<Int32>.Continuation
        private let finished: Task<Int32, any Error>

        fileprivate init(processIdentifier: Int32, logFile: URL, stopSignal: AsyncStream<Int32>.Continuation, finished: Task<Int32, any Error>) {
            self.processIdentifier = processIdentifier
            self.logFile = logFile
            self.stopSignal = stopSignal
            self.finished = finished
        }

        /// A test that failed before it stopped its program (an expectation threw) must not leave
        /// it running: it is killed when the test lets go of it. After `stop`, or once it has ended
        /// by itself, nobody hears the signal.
        deinit {
            stopSignal.yield(SIGKILL)
            stopSignal.finish()
        }

        package var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

        /// Sends `signal` and returns the exit status (128 + signal if the signal ended it).
        package func stop(signal: Int32) async throws -> Int32 {
            stopSignal.yield(signal)
            return try await finished.value
        }
    }

    /// Starts `executable`; it runs until `stop(signal:)`, or until it ends by itself.
    package static func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> Background {
        let logFile = Scratch.path("command", pathExtension: "log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let (signals, stopSignal) = AsyncStream.makeStream(of: Int32.self)
        let (started, startedContinuation) = AsyncStream.makeStream(of: Int32.self)
        let executable = Self.executable(executable), environment = Self.environment(environment)
        let logPath = logFile.path
        let finished = Task<Int32, any Error> {
            try await runInBackground(executable, Arguments(arguments), environment, logPath: logPath, started: startedContinuation, signals: signals)
        }
        var iterator = started.makeAsyncIterator()
        guard let processIdentifier = await iterator.next() else { throw CocoaError(.executableLoad) }
        return Background(processIdentifier: processIdentifier, logFile: logFile, stopSignal: stopSignal, finished: finished)
    }

    private static func executable(_ name: String) -> Executable {
        name.hasPrefix("/") ? .path(.init(name)) : .name(name)
    }

    /// The test process's environment with `values`, and TMPDIR in the tests' scratch folder: what
    /// programs leave in their temporary folder (SwiftPM and Chromium leave some) goes with it.
    private static func environment(_ values: [String: String]) -> Environment {
        let values = ["TMPDIR": Scratch.root.path].merging(values) { _, given in given }
        return .inherit.updating(Dictionary(uniqueKeysWithValues: values.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) }))
    }

}

// Outside `Command`, so that `run` means Subprocess's function rather than `Command.run`.

private func runToCompletion(_ executable: Executable, _ arguments: Arguments, _ environment: Environment) async throws -> Command.Result {
    let result = try await run(
        executable, arguments: arguments, environment: environment,
        output: .string(limit: 64 << 20), error: .string(limit: 64 << 20))
    return Command.Result(status: code(result.terminationStatus), output: result.standardOutput, errors: result.standardError)
}

private func runInBackground(
    _ executable: Executable, _ arguments: Arguments, _ environment: Environment, logPath: String,
    started: AsyncStream<Int32>.Continuation, signals: AsyncStream<Int32>
) async throws -> Int32 {
    let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
    defer { try? log.close() }
    let descriptor = FileDescriptor(rawValue: log.fileDescriptor)
    let result = try await run(
        executable, arguments: arguments, environment: environment, input: .none,
        output: .fileDescriptor(descriptor, closeAfterSpawningProcess: false),
        error: .fileDescriptor(descriptor, closeAfterSpawningProcess: false)
    ) { execution in
        started.yield(execution.processIdentifier.value)
        started.finish()
        for await signal in signals {
            try? execution.send(signal: Signal(rawValue: signal))
            break
        }
    }
    return code(result.terminationStatus)
}

private func code(_ status: TerminationStatus) -> Int32 {
    switch status {
    case .exited(let code): code
    case .signaled(let signal): 128 + signal
    }
}

/// Whether a process with this id exists (a zombie counts until it is reaped).
package func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno != ESRCH
}

/// Whether a process with this id is still running: not gone, and not a zombie. An orphan that
/// ended may stay a zombie for as long as the process that adopted it does not reap it.
package func processRuns(_ pid: Int32) -> Bool {
    guard processExists(pid) else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let afterName = stat.lastIndex(of: ")")
    else { return true }
    return stat[stat.index(after: afterName)...].trimmingCharacters(in: .whitespaces).first != "Z"
}

/// Paths inside the repository, from its root.
package enum Repository {
    package static func path(_ relative: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(relative).standardized.path
    }
}

/// Polls `condition` until it holds or `timeout` passes; the way tests wait for something to happen.
/// The default is generous: it costs nothing when the condition holds early, and CI runs the suites
/// in parallel on two cores, where a job runner under load once needed more than ten seconds.
package func eventually(timeout: Duration = .seconds(30), _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}

/// `eventually` for a condition that has to ask something that suspends (a database, a server).
package func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
