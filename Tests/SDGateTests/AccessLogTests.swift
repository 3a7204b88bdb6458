import Foundation
import TestSupport
import Testing

/// The log as `sdgate serve` writes it: buffered, every line out by the time the process ends, and
/// never a brake on requests.
@Suite("Access log", .serialized)
struct AccessLogTests {
    /// SIGTERM while four clients keep the gateway busy: every request that was answered has its line.
    @Test func noLineIsLostAcrossSIGTERMUnderLoad() async throws {
        let gateway = try await RunningGateway.start(environment: KeysCommandTests.environment())
        let answered = Scratch.path("answered", pathExtension: "txt")
        async let load = Command.run(
            "python3",
            [
                Repository.path("Tests/SDGateTests/Clients/health_load.py"), "\(gateway.port)", "4", "30",
                answered.path,
            ])
        // Under way: a thousand answers logged (the log is written out every 200 ms).
        #expect(await eventually(timeout: .seconds(30)) { gateway.log.components(separatedBy: "route=/health").count > 1000 })
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
        let loaded = try await load
        #expect(loaded.status == 0, "\(loaded.errors)")

        let ids = try String(contentsOf: answered, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(ids.count > 1000)
        let logged = Set(
            gateway.log.split(separator: "\n").compactMap { line -> String? in
                guard let range = line.firstRange(of: "request_id=") else { return nil }
                return String(line[range.upperBound...].prefix(while: { !$0.isWhitespace }))
            })
        let missing = ids.filter { !logged.contains($0) }
        #expect(missing.isEmpty, "\(missing.count) of \(ids.count) answered requests have no log line")
    }

    /// The log's output is a pipe that nobody reads: the requests are answered all the same, and the
    /// lines that could not wait are dropped and counted in /metrics.
    @Test func aBlockedLogOutputDoesNotStallRequests() async throws {
        let folder = Scratch.path("sdgate")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let pipe = folder.appendingPathComponent("log").path
        #expect(mkfifo(pipe, 0o600) == 0)
        // Opens the pipe for reading (so that the gateway's open succeeds) and never reads.
        let reader = try await Command.start("/bin/sh", ["-c", "exec sleep 600 < \"$0\"", pipe])
        let port = try unusedLoopbackPort()
        let gateway = try await Command.start(
            "/bin/sh",
            [
                "-c", "exec \"$0\" serve --host 127.0.0.1 --port \"$1\" > \"$2\"",
                CommandLineTests.binary.path, "\(port)", pipe,
            ],
            environment: [
                "SDGATE_DATA_DIR": folder.appendingPathComponent("data").path,
                "SDGATE_LOG_BUFFER_BYTES": "4KiB", "SDGATE_ADMIN_TOKEN": "log-test-admin-token",
            ])
        #expect(
            try await eventually(timeout: .seconds(30)) { try await Command.run("curl", ["-sf", "http://127.0.0.1:\(port)/health"]).status == 0 })

        // Far more lines than the pipe (64 KiB) and the buffer (4 KiB) hold: a log that made requests
        // wait would hold them up after about 450. Each client waits at most 10 s for an answer.
        let answered = folder.appendingPathComponent("answered.txt")
        let load = try await Command.run(
            "python3",
            [
                Repository.path("Tests/SDGateTests/Clients/health_load.py"), "\(port)", "2", "300",
                answered.path, "3000",
            ])
        #expect(load.status == 0, "\(load.errors)")
        let count = try String(contentsOf: answered, encoding: .utf8).split(separator: "\n").count
        #expect(count == 3000, "\(count) of 3000 requests answered with the log blocked")
        let metrics = try await Command.run("curl", ["-sf", "--max-time", "10", "http://127.0.0.1:\(port)/metrics"])
        let dropped =
            metrics.output.split(separator: "\n").first { $0.hasPrefix("sdgate_log_lines_dropped_total") }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(dropped > 0, "\(metrics.output.prefix(2000))")

        // SIGTERM: the last lines cannot be written either; the gateway gives up on them and ends.
        #expect(kill(gateway.processIdentifier, SIGTERM) == 0)
        let ended = await eventually(timeout: .seconds(60)) { !processRuns(gateway.processIdentifier) }
        // Closing the pipe frees a gateway stuck writing to it, so that a failure cannot hang here.
        _ = try await reader.stop(signal: SIGKILL)
        let status = try await gateway.stop(signal: SIGKILL)
        #expect(ended && status == 0, "the gateway did not end by itself with its log blocked (status \(status))")
    }
}
