import CoreMetrics
import GatewayAPI
import GenerationCore
import LocalInference
import Logging
import UpstreamProxy

/// One entry of a model's route: the team's own workers, or an upstream.
enum RouteEntry: Sendable {
    case local(LocalBackend)
    case upstream(UpstreamBackend)
}

/// The per-model route: which backends serve which model, in which order. A request goes to the
/// first entry of its model's route. It passes to the next only when nothing was sent: an upstream
/// that could not be reached at all, or, with spill-over, local workers with more than
/// `spillOverQueue` requests already waiting. A model without a route goes to `fallback`.
///
/// Metrics: `sdgate_upstream_duration_seconds{upstream}` for each generation an upstream served,
/// `sdgate_upstream_errors_total{upstream,kind}` for each failure, by `UpstreamFailure.kind` (a call
/// cancelled because its client left is not one).
struct RoutedBackend: InferenceBackend {
    let routes: [String: [RouteEntry]]
    let fallback: any InferenceBackend
    let spillOverQueue: Int?
    let logger: Logger
    var metrics: any MetricsFactory = NOOPMetricsHandler.instance

    func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        guard let route = routes[request.model], !route.isEmpty else { return try await fallback.generate(request) }
        for (index, entry) in route.enumerated() {
            switch entry {
            case .local(let workers):
                if let limit = spillOverQueue, index < route.count - 1, workers.queued > limit {
                    logger.info("local queue long; spilling over", metadata: ["model": "\(request.model)", "queued": "\(workers.queued)"])
                    continue
                }
                var result = try await workers.generate(request)
                result.upstream = UpstreamReport(name: GatewayConfiguration.localRoute)
                return result
            case .upstream(let backend):
                let name = [("upstream", backend.upstream.name)]
                let start = ContinuousClock.now
                do {
                    let result = try await Self.toTheEnd { () throws(UpstreamFailure) in try await backend.generate(request) }
                    Timer(label: "sdgate_upstream_duration_seconds", dimensions: name, factory: metrics)
                        .recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
                    return result
                } catch {
                    // A call cut short because the client left (its task cancelled) is no failure of the upstream's.
                    if !Task.isCancelled {
                        Counter(label: "sdgate_upstream_errors_total", dimensions: name + [("kind", error.kind)], factory: metrics).increment()
                    }
                    switch error {
                    case .unreachable:
                        logger.warning("upstream unreachable", metadata: ["upstream": "\(backend.upstream.name)", "model": "\(request.model)"])
                    case .answered(let error):
                        logger.notice("upstream failed", metadata: ["upstream": "\(backend.upstream.name)", "model": "\(request.model)",
                                                                    "error": "\(error)"])
                        throw error
                    }
                }
            }
        }
        throw .failed("no upstream for model '\(request.model)' could be reached")
    }

    /// Runs an upstream call to its end even if its client leaves (the caller is cancelled): once
    /// sent, the team pays the upstream for it, so its result is charged to the member, and a
    /// cancelled call is never counted as the upstream's failure.
    private static func toTheEnd(_ call: @escaping @Sendable () async throws(UpstreamFailure) -> GenerationResult)
        async throws(UpstreamFailure) -> GenerationResult {
        try await uncancelled { () async -> Result<GenerationResult, UpstreamFailure> in
            do throws(UpstreamFailure) {
                return .success(try await call())
            } catch {
                return .failure(error)
            }
        }.get()
    }
}
