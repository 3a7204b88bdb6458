import Dispatch
import Foundation
import GenerationCore
import Jobs
import Ledger

#if canImport(Glibc)
import Glibc
#endif

/// The gateway running: its workers started, served until SIGTERM or SIGINT, then drained in
/// order (the connections, the generations under way, the background work, the backends).
extension GatewayApp {
    /// Serves until SIGTERM or SIGINT, then drains and returns. The local workers run as long.
    /// `whenListening` runs once the server listens and its start-up is done.
    package func run(whenListening: @Sendable () -> Void = {}) async throws {
        startLocalWorkers()
        do {
            try await serve(whenListening: whenListening)
        } catch {
            await shutdownBackends()
            throw error
        }
        await shutdownBackends()
    }

    private func serve(whenListening: @Sendable () -> Void) async throws {
        let signals = SignalWaiter(signals: [SIGTERM, SIGINT])
        let server = try makeServer()
        // At once (holds left by a crash), then every half minute, or sooner for short hold lifetimes.
        let interval = min(.seconds(30), configuration.holdLifetime / 2)
        let reaper = ledger.map { HoldReaper(ledger: $0, every: interval, clock: SystemWallClock(), logger: logger, metricsFactory: metrics.factory) }
        let address = try server.start()
        alerts?.start()
        let jobs = jobRunner.start(
            JobUpkeep(
                lease: configuration.jobLease, maxQueueTime: configuration.jobMaxQueueTime,
                retention: configuration.outputRetention), logger: logger)
        logger.info("listening", metadata: ["address": "\(address)"])
        whenListening()
        let signal = await signals.next()
        logger.info("shutting down", metadata: ["signal": "\(signal)", "grace_period": "\(configuration.shutdownGracePeriod)"])
        await server.shutdown(gracePeriod: configuration.shutdownGracePeriod)
        await waitForCallsInFlight()
        // The charges of the last requests are evaluated; their alerts wait in the database if
        // the dispatcher stops before it sends them.
        await alerts?.stop()
        await jobs?.stop()
        reaper?.stop()
        logger.info("stopped")
    }

    /// Waits for the generations still under way once every connection closed (their clients may
    /// have gone at the grace period's end): each reached an upstream or a worker, which the team
    /// pays for, and is charged when it ends. Bounded by the longest time one can take.
    func waitForCallsInFlight() async {
        let count = callsInFlight.count
        guard count > 0 else { return }
        let limit = configuration.longestGeneration
        logger.notice("waiting for the generations under way", metadata: ["count": "\(count)", "at_most": "\(limit)"])
        let left = await callsInFlight.drained(within: limit)
        if left > 0 { logger.error("generations still under way at exit; their holds expire uncharged", metadata: ["count": "\(left)"]) }
    }

    /// Spawns the configured worker processes and reaches for the remote ones.
    func startLocalWorkers() {
        guard let local else { return }
        let withheld = configuration.secretVariables(in: ProcessInfo.processInfo.environment)
        for var command in configuration.local.commands {
            command.withheldVariables = withheld
            local.spawn(command)
        }
        for url in configuration.local.remoteWorkers { local.connect(to: url, token: configuration.local.remoteWorkerToken) }
    }

    /// Stops the worker processes and closes the upstreams' connection pools; after the server has drained.
    func shutdownBackends() async {
        await local?.shutdown()
        for upstream in upstreams.values { await upstream.shutdown() }
    }
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
