package import GenerationCore
package import Logging

/// One entry of a model's route: a backend, under the name usage events record for what it served
/// (an upstream's name, or `local` for the team's own workers).
package struct RouteEntry: Sendable {
    package let name: String
    package let backend: any RoutableBackend

    package init(name: String, backend: any RoutableBackend) {
        self.name = name
        self.backend = backend
    }
}

/// The per-model route: which backends serve which model, in which order. A request goes to the
/// first entry of its model's route. It passes to the next only when nothing was sent: an upstream
/// that could not be reached at all, or, with spill-over, a backend with more than
/// `spillOverQueue` requests already waiting (never the last entry). A model without a route goes
/// to `fallback`.
package struct RoutedBackend: InferenceBackend {
    let routes: [String: [RouteEntry]]
    let fallback: any InferenceBackend
    let spillOverQueue: Int?
    let logger: Logger

    /// - Parameter spillOverQueue: at least 0 (the configuration checks it); nil never spills over.
    package init(routes: [String: [RouteEntry]], fallback: any InferenceBackend, spillOverQueue: Int?, logger: Logger) {
        self.routes = routes
        self.fallback = fallback
        self.spillOverQueue = spillOverQueue
        self.logger = logger
    }

    package func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        guard let route = routes[request.model], !route.isEmpty else { return try await fallback.generate(request) }
        for (index, entry) in route.enumerated() {
            let queued = entry.backend.queued
            if let limit = spillOverQueue, index < route.count - 1, queued > limit {
                logger.info("\(entry.name) queue long; spilling over", metadata: ["model": "\(request.model)", "queued": "\(queued)"])
                continue
            }
            do {
                var result = try await entry.backend.attempt(request)
                // The entry's name, with what an upstream said about money kept beside it.
                result.upstream = UpstreamReport(name: entry.name, cost: result.upstream?.cost, remainingCredits: result.upstream?.remainingCredits)
                return result
            } catch {
                switch error {
                case .notSent: continue
                case .failed(let error): throw error
                }
            }
        }
        throw .failed("no upstream for model '\(request.model)' could be reached")
    }
}
