package import CoreMetrics
package import GenerationCore
package import GuardedHTTP
package import Logging
import NIOCore

/// One configured upstream, with its own connection pool; renders the upstream's wire format
/// from the dialect-free request.
///
/// Once sent, a call runs to its end even if its caller is cancelled (its client left): the team
/// pays the upstream for it, so its result is charged to the member.
///
/// Metrics: `sdgate_upstream_duration_seconds{upstream}` for each generation it served,
/// `sdgate_upstream_errors_total{upstream,kind}` for each failure, by `UpstreamFailure.kind` (a call
/// cancelled because its client left is not one).
package final class UpstreamBackend: InferenceBackend {
    package let upstream: Upstream
    private let client: UpstreamClient
    private let outputs: GuardedFetcher
    private let logger: Logger
    private let metrics: any MetricsFactory
    private let reachability: @Sendable (Bool) -> Void

    /// - Parameters:
    ///   - outputPolicy: the addresses an image URL in the upstream's answer may lead to, unless
    ///     it is on the upstream's own origin.
    ///   - reachability: told after each call whether the upstream answered (true) or could not
    ///     be reached (false), for the alerts.
    package init(
        _ upstream: Upstream, outputPolicy: AddressPolicy = AddressPolicy(), logger: Logger = Logger(label: "sdgate.upstream"),
        metrics: any MetricsFactory = NOOPMetricsHandler.instance, reachability: @escaping @Sendable (Bool) -> Void = { _ in }
    ) {
        self.upstream = upstream
        self.logger = logger
        self.metrics = metrics
        self.reachability = reachability
        client = UpstreamClient(poolSize: upstream.poolSize)
        outputs = GuardedFetcher(policy: outputPolicy, timeout: .seconds(30), subject: "the upstream's image URL")
    }

    /// Generates, telling apart an upstream that could not be reached (nothing was sent, so a
    /// route may try its next entry) from one that answered or may have started to.
    package func send(_ request: GenerationRequest) async throws(UpstreamFailure) -> GenerationResult {
        let name = [("upstream", upstream.name)]
        let start = ContinuousClock.now
        let outcome = await uncancelled { [self] () async -> Result<GenerationResult, UpstreamFailure> in
            do throws(UpstreamFailure) {
                return .success(try await call(request))
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let result):
            Timer(label: "sdgate_upstream_duration_seconds", dimensions: name, factory: metrics)
                .recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
            reachability(true)
            return result
        case .failure(let error):
            // A call cut short because the client left (its task cancelled) is no failure of the upstream's.
            if !Task.isCancelled {
                Counter(label: "sdgate_upstream_errors_total", dimensions: name + [("kind", error.kind)], factory: metrics).increment()
            }
            switch error {
            case .unreachable:
                logger.warning("upstream unreachable", metadata: ["upstream": "\(upstream.name)", "model": "\(request.model)"])
                if !Task.isCancelled { reachability(false) }
            case .answered(.unsupported(let message)):
                // Refused before anything was sent: it says nothing about the upstream.
                logger.info(
                    "request not sent upstream", metadata: ["upstream": "\(upstream.name)", "model": "\(request.model)", "reason": "\(message)"])
            case .answered(let answered):
                reachability(true)
                logger.notice("upstream failed", metadata: ["upstream": "\(upstream.name)", "model": "\(request.model)", "error": "\(answered)"])
            }
            throw error
        }
    }

    /// Generates on this upstream alone: one that cannot be reached is a failure like any other.
    package func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        do {
            return try await send(request)
        } catch {
            switch error {
            case .unreachable: throw .failed("the upstream could not be reached")
            case .answered(let error): throw error
            }
        }
    }

    private func call(_ request: GenerationRequest) async throws(UpstreamFailure) -> GenerationResult {
        let deadline = NIODeadline.now() + .nanoseconds(upstream.deadline.wholeNanoseconds)
        switch upstream.dialect {
        case .segmind: return try await SegmindUpstream(upstream: upstream, client: client).generate(request, deadline: deadline)
        case .modelslab:
            return try await ModelsLabUpstream(upstream: upstream, client: client, outputs: outputs).generate(request, deadline: deadline)
        }
    }

    /// Closes the pool's connections; the application calls it once the server has drained.
    package func shutdown() async {
        await client.shutdown()
    }
}
