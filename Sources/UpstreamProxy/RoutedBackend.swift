public import CoreMetrics
public import GenerationCore
public import Logging

/// The per-model route: which upstreams serve which model, in which order. A request goes to the
/// first upstream of its model's route; only an upstream that could not be reached at all (the
/// request was never sent, so nothing can run or be charged twice) passes it to the next. A model
/// without a route goes to `fallback`.
///
/// Metrics: `sdgate_upstream_duration_seconds{upstream}` for each generation an upstream served,
/// `sdgate_upstream_errors_total{upstream,kind}` for each failure, by `UpstreamFailure.kind`.
public struct RoutedBackend: InferenceBackend {
    public let routes: [String: [UpstreamBackend]]
    public let fallback: any InferenceBackend
    let logger: Logger
    let metrics: any MetricsFactory

    public init(routes: [String: [UpstreamBackend]], fallback: any InferenceBackend, logger: Logger,
                metrics: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.routes = routes
        self.fallback = fallback
        self.logger = logger
        self.metrics = metrics
    }

    public func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        guard let route = routes[request.model], !route.isEmpty else { return try await fallback.generate(request) }
        for backend in route {
            let name = [("upstream", backend.upstream.name)]
            let start = ContinuousClock.now
            do {
                let result = try await backend.generate(request)
                Timer(label: "sdgate_upstream_duration_seconds", dimensions: name, factory: metrics)
                    .recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
                return result
            } catch {
                Counter(label: "sdgate_upstream_errors_total", dimensions: name + [("kind", error.kind)], factory: metrics).increment()
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
        throw .failed("no upstream for model '\(request.model)' could be reached")
    }
}
