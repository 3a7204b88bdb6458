import Foundation
import TestSupport
import Testing

/// The `sdgate` executable, run as a user runs it.
@Suite("sdgate command line")
struct CommandLineTests {
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sdgate")
    }

    static var exampleConfiguration: String {
        Repository.path("Config/sdgate.yaml")
    }

    @Test func helpNamesTheCommands() async throws {
        let result = try await RunningGateway.run(["--help"])
        #expect(result.status == 0)
        for word in ["serve", "config", "SDGATE_"] { #expect(result.output.contains(word), "\(word)") }
        let serve = try await RunningGateway.run(["serve", "--help"])
        for word in ["--config", "--host", "--port", "SIGTERM"] { #expect(serve.output.contains(word), "\(word)") }
    }

    /// The parser wraps each paragraph of a command's description within 80 columns; a line break
    /// written in the source text wraps it a second time, and the help reads ragged.
    @Test func everyCommandsDescriptionIsWrappedOnce() async throws {
        var commands: [[String]] = [[]]
        var checked = 0
        while let command = commands.popLast() {
            let help = try await RunningGateway.run(command + ["--help"])
            #expect(help.status == 0, "\(command)")
            let sections = help.output.components(separatedBy: "\n\n")
            let description = sections.prefix { !$0.hasPrefix("USAGE:") }
            for paragraph in description {
                let lines = paragraph.split(separator: "\n")
                for (line, next) in zip(lines, lines.dropFirst()) {
                    let nextWord = next.prefix { $0 != " " }
                    #expect(line.count + 1 + nextWord.count >= 80, "sdgate \(command.joined(separator: " ")): \"\(line)\" is broken early")
                }
            }
            if let listed = sections.first(where: { $0.hasPrefix("SUBCOMMANDS:") }) {
                for line in listed.split(separator: "\n").dropFirst() where line.hasPrefix("  ") && !line.hasPrefix("   ") {
                    commands.append(command + [String(line.dropFirst(2).prefix { $0 != " " })])
                }
            }
            checked += 1
        }
        // The command tree was walked, not just its root.
        #expect(checked > 20)
    }

    @Test func configCheckPrintsEveryEffectiveValue() async throws {
        let result = try await RunningGateway.run(
            ["config", "check", "--config", Self.exampleConfiguration],
            environment: ["SDGATE_SERVER_PORT": "9099"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.contains("server.port: 9099\n"))
        #expect(result.output.contains("server.timeouts.header_read: 10s\n"))
    }

    @Test func configCheckPassesOnEveryExampleFile() async throws {
        let folder = Repository.path("Config")
        // models.yaml is the model catalog, which every check reads through catalog_file.
        let examples = try FileManager.default.contentsOfDirectory(atPath: folder)
            .filter { $0.hasSuffix(".yaml") && $0 != "models.yaml" }.sorted()
        #expect(examples.contains("sdgate.yaml"))
        for name in examples {
            let result = try await RunningGateway.run(["config", "check", "--config", "\(folder)/\(name)"])
            #expect(result.status == 0, "\(name): \(result.errors)")
            #expect(result.output.contains("models: "), "\(name)")
        }
    }

    @Test func configCheckFailsOnATypoWithItsLine() async throws {
        let file = Scratch.path("typo", pathExtension: "yaml")
        try "server:\n  host: 127.0.0.1\n  limits:\n    max_body_byte: 5MiB\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try await RunningGateway.run(["config", "check", "--config", file.path])
        #expect(result.status != 0)
        #expect(result.errors.contains("\(file.path):4: server.limits.max_body_byte: unknown key (did you mean 'server.limits.max_body_bytes'?)"))
    }

    /// Set in a compose file, a misspelt variable was ignored without a word.
    @Test func configCheckAndServeWarnOfAnSDGATEVariableThatSetsNothing() async throws {
        let environment = ["SDGATE_LOG_LEVL": "debug"]
        let warning = "SDGATE_LOG_LEVL: no such setting; ignored (did you mean SDGATE_LOG_LEVEL?)"
        let check = try await RunningGateway.run(["config", "check"], environment: environment)
        #expect(check.status == 0, "\(check.errors)")
        #expect(check.errors.contains("warning: \(warning)\n"), "\(check.errors)")
        #expect(check.output.contains("log.level: info\n"))
        let gateway = try await RunningGateway.start(environment: environment)
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
        #expect(gateway.log.split(separator: "\n").contains { $0.contains(" warning sdgate:") && $0.contains(warning) }, "\(gateway.log)")
    }

    @Test func aBrokenCatalogStopsServeAndConfigCheckNamingFileModelAndField() async throws {
        let catalog = Scratch.path("models", pathExtension: "yaml")
        let broken = try String(contentsOfFile: Repository.path("Config/models.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "default: UniPC", with: "default: Warp")
        try broken.write(to: catalog, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: catalog) }
        for arguments in [["config", "check"], ["serve", "--port", "0"]] {
            let result = try await RunningGateway.run(arguments, environment: ["SDGATE_CATALOG_FILE": catalog.path])
            #expect(result.status != 0, "\(arguments)")
            #expect((result.output + result.errors).contains("\(catalog.path):"), "\(arguments)")
            #expect((result.output + result.errors).contains("sdxl-img2img: scheduler: default 'Warp' is not one of its values"), "\(arguments)")
        }
    }

    @Test func serveAnswersHealthLogsEachRequestAndStopsCleanlyOnSIGTERM() async throws {
        let gateway = try await RunningGateway.start()
        let health = try await Command.run("curl", ["-sS", "-i", "http://127.0.0.1:\(gateway.port)/health", "-H", "x-api-key: SG_0123456789abcdef"])
        #expect(health.output.hasPrefix("HTTP/1.1 200 OK"))
        #expect(health.output.hasSuffix("{\"status\":\"ok\"}"))
        let ready = try await Command.run("curl", ["-sS", "http://127.0.0.1:\(gateway.port)/ready"])
        #expect(ready.output == "{\"status\":\"ready\"}")

        let status = try await gateway.stop(signal: SIGTERM)
        #expect(status == 0)
        let log = gateway.log
        let requestLines = log.split(separator: "\n").filter { $0.contains(" request") }
        #expect(requestLines.count == 2)
        #expect(requestLines.first?.contains("route=/health") == true)
        #expect(requestLines.first?.contains("status=200") == true)
        #expect(requestLines.first?.contains("request_id=") == true)
        // Headers never reach the log, so neither do keys.
        #expect(!log.contains("SG_0123456789abcdef"))
        #expect(log.contains("shutting down"))
        #expect(log.contains("stopped"))
    }

    @Test func serveStopsCleanlyOnSIGINT() async throws {
        let gateway = try await RunningGateway.start()
        #expect(try await gateway.stop(signal: SIGINT) == 0)
    }

    @Test func serveRefusesAnInvalidConfigurationBeforeListening() async throws {
        let result = try await RunningGateway.run(["serve", "--port", "0"], environment: ["SDGATE_SERVER_TIMEOUTS_HEADER_READ": "forever"])
        #expect(result.status != 0)
        #expect(result.errors.contains("SDGATE_SERVER_TIMEOUTS_HEADER_READ: server.timeouts.header_read: expected a duration"))
    }

    /// Each gateway keeps its own rate limiter, so two on one SQLite ledger would double every
    /// key's limit: a second `serve` on the same data folder (on another port) refuses to start,
    /// saying why, while the first keeps serving and the commands still work beside it.
    @Test func aSecondServeOnTheSameSQLiteLedgerRefusesToStart() async throws {
        let environment = ["SDGATE_DATA_DIR": Scratch.path("sdgate").path]
        let first = try await RunningGateway.start(environment: environment)
        let second = try await Command.start(
            CommandLineTests.binary.path, ["serve", "--host", "127.0.0.1", "--port", "0"], environment: environment)
        // It ends, or (were it let in) it listens: either is seen without waiting out a timeout.
        #expect(await eventually(timeout: .seconds(60)) { !processRuns(second.processIdentifier) || second.log.contains("address=") })
        #expect(try await second.stop(signal: SIGKILL) == 1, "\(second.log)")
        #expect(second.log.contains("another sdgate serve uses the ledger at \(environment["SDGATE_DATA_DIR"] ?? "")/sdgate.sqlite"), "\(second.log)")

        let health = try await Command.run("curl", ["-sS", "-m", "10", "http://127.0.0.1:\(first.port)/health"])
        #expect(health.output == "{\"status\":\"ok\"}", "\(health.errors)")
        let created = try await RunningGateway.run(["keys", "create", "--name", "alice", "--credits", "1"], environment: environment)
        #expect(created.status == 0, "\(created.errors)")
        #expect(try await RunningGateway.run(["ledger", "verify"], environment: environment).status == 0)
        #expect(try await first.stop(signal: SIGTERM) == 0)

        // Its lock goes with it: the next gateway on the folder starts.
        let next = try await RunningGateway.start(environment: environment)
        #expect(try await next.stop(signal: SIGTERM) == 0)
    }

    @Test func serveReportsAPortInUse() async throws {
        let first = try await RunningGateway.start()
        let second = try await RunningGateway.run(["serve", "--host", "127.0.0.1", "--port", "\(first.port)"])
        #expect(second.status != 0)
        #expect(second.output.contains("Address already in use"))
        _ = try await first.stop(signal: SIGTERM)
    }
}

/// `sdgate serve --port 0` as a child process, with its log.
struct RunningGateway: Sendable {
    let process: Command.Background
    let port: Int

    var log: String { process.log }

    /// Starts `sdgate serve` on `port` (0: a free one) and waits for it to listen; `descriptorLimit`
    /// is what `ulimit` sets before it starts, as "-n 64" (soft and hard) or "-Sn 256" (soft);
    /// `binary` another copy of sdgate; `user` the user id it runs as (switching needs root).
    static func start(
        environment: [String: String] = [:], port: Int = 0, descriptorLimit: String? = nil,
        binary: String = CommandLineTests.binary.path, user: UInt32? = nil
    ) async throws -> RunningGateway {
        var command = [binary, "serve", "--host", "127.0.0.1", "--port", "\(port)"]
        if let user { command = ["setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups"] + command }
        if let descriptorLimit { command = ["/bin/sh", "-c", "ulimit \(descriptorLimit) && exec \"$@\"", "sh"] + command }
        // Each gateway its own data folder, unless the test shares one on purpose.
        var environment = environment
        if environment["SDGATE_DATA_DIR"] == nil {
            environment["SDGATE_DATA_DIR"] = Scratch.path("sdgate").path
        }
        let process = try await Command.start(command[0], Array(command.dropFirst()), environment: environment)
        var port: Int?
        _ = await eventually(timeout: .seconds(30)) {
            guard let range = process.log.firstRange(of: "address=127.0.0.1:") else { return false }
            port = Int(process.log[range.upperBound...].prefix { $0.isNumber })
            return port != nil
        }
        guard let port else {
            _ = try? await process.stop(signal: SIGKILL)
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "sdgate did not start listening:\n\(process.log)"])
        }
        return RunningGateway(process: process, port: port)
    }

    /// Sends `signal` and waits for the exit status.
    func stop(signal: Int32) async throws -> Int32 {
        try await process.stop(signal: signal)
    }

    /// Runs sdgate to completion with `arguments`.
    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Command.Result {
        var environment = environment
        if environment["SDGATE_DATA_DIR"] == nil {
            environment["SDGATE_DATA_DIR"] = Scratch.path("sdgate").path
        }
        return try await Command.run(CommandLineTests.binary.path, arguments, environment: environment)
    }
}

@Suite("sdgate and its descriptor limit")
struct DescriptorLimitTests {
    /// CPU seconds the process has used (user + system), from /proc.
    static func cpuSeconds(of pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        return (Double(fields[11])! + Double(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Where each open descriptor of the process leads ("socket:[123]", a path, ...).
    static func descriptors(of pid: Int32) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap {
            try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")
        }
    }

    /// The soft and hard "Max open files" of a running process.
    static func openFileLimits(of pid: Int32) throws -> (soft: String, hard: String)? {
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        guard let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }) else { return nil }
        let values = line.dropFirst("Max open files".count).split(separator: " ")
        return values.count >= 2 ? (String(values[0]), String(values[1])) : nil
    }

    /// Clients could once take every descriptor, and then libdispatch, checking its threads through
    /// /proc, ended the process whenever work was waiting (CI saw SIGILL under load). Now they get a
    /// quarter; the others wait in the backlog while the rest stays free.
    @Test func clientsGetAQuarterOfTheDescriptorsAndTheOthersWaitWithoutSpinning() async throws {
        let gateway = try await RunningGateway.start(descriptorLimit: "-n 64")
        let pid = gateway.process.processIdentifier
        #expect(gateway.log.contains("max_connections=16"), "\(gateway.log)")
        var clients: [RawSocket] = []
        for _ in 0..<100 { clients.append(try RawSocket(port: gateway.port)) }
        // The listening socket and sixteen connections.
        let accepted = { try Self.descriptors(of: pid).count { $0.hasPrefix("socket:") } }
        #expect(try await eventually { try accepted() == 17 }, "\((try? Self.descriptors(of: pid)) ?? [])")
        let before = try Self.cpuSeconds(of: pid)
        let start = ContinuousClock.now
        // "Does not spin" and "takes no more" can only be seen over time; a spinning accept loop
        // would use a whole core, the bound is a quarter.
        try await Task.sleep(for: .seconds(1))
        let used = try Self.cpuSeconds(of: pid) - before
        let elapsed = ContinuousClock.now - start
        #expect(used < 0.25 * Double(elapsed.components.seconds + 1), "spent \(used) s of CPU while at its connection limit")
        #expect(try accepted() == 17)
        #expect(try Self.descriptors(of: pid).count <= 48, "a quarter of the descriptors stays free, and more")
        #expect(!gateway.log.contains("accept failed"), "\(gateway.log)")
        // Connections close: the waiting ones are accepted and answered.
        clients.removeAll()
        let health = try await Command.run("curl", ["-sS", "-m", "10", "http://127.0.0.1:\(gateway.port)/health"])
        #expect(health.output == "{\"status\":\"ok\"}", "curl: \(health.errors)\n\(gateway.log)")
        let status = try await gateway.stop(signal: SIGTERM)
        #expect(status == 0, "\(gateway.log)")
    }

    @Test func theSoftLimitIsRaisedToTheHardLimit() async throws {
        var limit = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        try #require(limit.rlim_max > 256, "the hard limit must leave room above the soft limit set here")
        let gateway = try await RunningGateway.start(descriptorLimit: "-Sn 256")
        let limits = try #require(try Self.openFileLimits(of: gateway.process.processIdentifier))
        #expect(limits.soft == limits.hard && limits.soft != "256", "\(limits)")
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
    }
}

/// A bare connected socket, closed when released.
final class RawSocket {
    let fd: Int32

    init(port: Int) throws {
        fd = try connectToLoopback(port: port)
    }

    deinit { close(fd) }
}

/// The one binary, copied alone into an empty folder: `sdgate serve` there serves the catalog built
/// into it, meters, and answers; `sdgate catalog show` prints that catalog.
@Suite("sdgate anywhere")
struct AnywhereTests {
    /// `./sdgate` with `arguments`, run from `folder`, as `sh` would start it there.
    static func inFolder(_ folder: URL, _ arguments: [String]) -> [String] {
        ["-c", "cd \"$0\" && exec ./sdgate \"$@\"", folder.path] + arguments
    }

    @Test func theBinaryAloneInAnEmptyFolderServesAndMeters() async throws {
        let folder = Scratch.path("anywhere")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CommandLineTests.binary, to: folder.appendingPathComponent("sdgate"))
        let shown = try await Command.run("/bin/sh", Self.inFolder(folder, ["catalog", "show"]))
        #expect(shown.status == 0, "\(shown.errors)")
        let shipped = try String(contentsOfFile: Repository.path("Config/models.yaml"), encoding: .utf8)
        #expect(shown.output == shipped, "the built-in catalog is Config/models.yaml")

        let serve = try await Command.start("/bin/sh", Self.inFolder(folder, ["serve", "--host", "127.0.0.1", "--port", "0"]))
        var port: Int?
        _ = await eventually(timeout: .seconds(30)) {
            port = serve.log.firstRange(of: "address=127.0.0.1:").flatMap { Int(serve.log[$0.upperBound...].prefix { $0.isNumber }) }
            return port != nil
        }
        let listening = try #require(port, "\(serve.log)")
        let created = try await Command.run("/bin/sh", Self.inFolder(folder, ["keys", "create", "--name", "alice", "--credits", "1", "--json"]))
        let secret = try #require((try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any])?["secret"] as? String)
        // A catalog model without a route: known (503, no backend), where an unknown one is 404.
        for (slug, status) in [("sdxl1.0-txt2img", "503"), ("no-such-model", "404")] {
            let answer = try await Command.run(
                "curl",
                [
                    "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "x-api-key: \(secret)", "-H", "Content-Type: application/json",
                    "-d", #"{"prompt":"a fox"}"#, "http://127.0.0.1:\(listening)/v1/\(slug)",
                ])
            #expect(answer.output == status, "\(slug): \(answer.output)")
        }
        // Metered in the ledger under ./data: the known model's call is a usage row.
        let usage = try await Command.run("/bin/sh", Self.inFolder(folder, ["usage", "--json"]))
        let rows = (try JSONSerialization.jsonObject(with: Data(usage.output.utf8)) as? [String: Any])?["requests"] as? [[String: Any]]
        #expect(rows?.map { $0["model"] as? String } == ["sdxl1.0-txt2img"] && rows?.first?["status"] as? Int == 503, "\(usage.output)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("data/sdgate.sqlite").path), "the ledger under ./data")
        #expect(try await serve.stop(signal: SIGTERM) == 0)
    }
}
