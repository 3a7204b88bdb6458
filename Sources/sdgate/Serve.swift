import ArgumentParser
import CSystemShims
import HTTPServer
import Logging
import SDGateApp

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway until SIGTERM or SIGINT.",
        discussion: "Listens on 0.0.0.0:8080 unless configured otherwise. --port 0 picks a free port and logs it."
    )

    @OptionGroup var options: ConfigurationOptions

    @Option(help: ArgumentHelp("Address to listen on (overrides server.host).", valueName: "address"))
    var host: String?

    @Option(help: ArgumentHelp("Port to listen on, 0 for any free port (overrides server.port).", valueName: "n"))
    var port: Int?

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be between 0 and 65535") }
    }

    func run() async throws {
        keepLargeBuffersInTheHeap()
        // Every connection is a descriptor, and the server holds a quarter of the limit at most.
        DescriptorLimit.raiseToHardLimit()
        var configuration = try options.load()
        if let host { configuration.server.host = host }
        if let port { configuration.server.port = port }
        let level = configuration.logLevel
        let output = BufferedLogOutput(capacity: configuration.logBufferBytes)
        // Every line written before the process ends, SIGTERM included (`run` returns once the
        // server has drained).
        defer { output.close() }
        LoggingSystem.bootstrap { label in
            var handler = BufferedLogHandler(label: label, output: output)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sdgate")
        for warning in configuration.warnings { logger.warning("\(warning)") }
        do {
            // Held until `run` returns: the process's life as a gateway.
            let lock = try configuration.ledgerIsPostgres ? nil : ServeLock(ledgerPath: configuration.ledgerPath)
            defer { withExtendedLifetime(lock) {} }
            let (app, newAdminToken) = try await GatewayApp.open(configuration: configuration, logger: logger, logOutput: output)
            app.metrics.countLogDrops { output.droppedLines }
            if let newAdminToken {
                // Shown once, outside the log: only its hash is kept.
                print(
                    """
                    sdgate: generated the admin token; it is shown this once and only its hash is kept:
                      \(newAdminToken)
                    Use it as 'Authorization: Bearer <token>' on /admin/, or set SDGATE_ADMIN_TOKEN to choose your own.
                    """)
                // Standard output is a pipe or a file under a supervisor: without this the token
                // would wait in stdio's buffer behind the log's own writes.
                fflush(nil)
            }
            try await app.run(whenListening: { StartupPages.release(after: .seconds(10), logger: logger) })
        } catch {
            logger.critical("cannot serve", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }

    /// Every image request allocates a few buffers of a megabyte or more (the body, the decoded
    /// image, the upstream's request). glibc serves those with fresh mmap()s and returns them on
    /// free(), so the kernel faults in and zeroes every page again, request after request: a
    /// quarter of the proxy path's time. Allocations below the 32 MiB body limit come from the
    /// heap instead, and freed memory is kept for reuse up to 128 MiB.
    private func keepLargeBuffersInTheHeap() {
        #if canImport(Glibc)
        _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 128 << 20)
        #endif
    }
}
