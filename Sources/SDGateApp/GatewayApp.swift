#if canImport(Glibc)
import Glibc
#endif
import Dispatch
public import HTTPServer
public import Logging

/// The composition root: builds every part from the configuration, serves until SIGTERM or SIGINT,
/// then shuts down gracefully.
public struct GatewayApp: Sendable {
    public let configuration: GatewayConfiguration
    public let logger: Logger

    public init(configuration: GatewayConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The routes the gateway answers.
    func makeRouter(isReady: @escaping @Sendable () -> Bool) -> Router {
        var router = Router()
        HealthRoutes.register(on: &router, isReady: isReady)
        return router
    }

    /// Builds the HTTP server with the gateway's routes, not yet started.
    public func makeServer() throws -> HTTPServer {
        let box = ServerBox()
        let router = makeRouter(isReady: { box.server?.isShuttingDown == false })
        let logger = logger
        let server = try HTTPServer(configuration: configuration.server, responder: GatewayResponder(router: router, logger: logger)) { error in
            logger.warning("accept failed", metadata: ["error": "\(error)"])
        }
        box.server = server
        return server
    }

    /// Serves until SIGTERM or SIGINT, then drains and returns.
    public func run() async throws {
        let signals = SignalWaiter(signals: [SIGTERM, SIGINT])
        let server = try makeServer()
        let address = try server.start()
        logger.info("listening", metadata: ["address": "\(address)"])
        let signal = await signals.next()
        logger.info("shutting down", metadata: ["signal": "\(signal)", "grace_period": "\(configuration.shutdownGracePeriod)"])
        await server.shutdown(gracePeriod: configuration.shutdownGracePeriod)
        logger.info("stopped")
    }
}

/// Lets the readiness route see the server it belongs to, which is built after the routes.
private final class ServerBox: @unchecked Sendable {
    // Safety: written once in `makeServer` before the server starts, only read afterwards.
    var server: HTTPServer?
}

/// Turns the first of some signals into an awaitable value (Dispatch signal sources, not handlers).
final class SignalWaiter {
    private let sources: [any DispatchSourceSignal]
    private let received: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation

    init(signals: [Int32]) {
        (received, continuation) = AsyncStream.makeStream(of: Int32.self)
        let continuation = continuation
        sources = signals.map { number in
            // The default action would end the process before the source sees the signal.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.activate()
            return source
        }
    }

    func next() async -> Int32 {
        for await number in received { return number }
        return 0
    }
}
