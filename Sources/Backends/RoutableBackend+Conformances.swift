package import GenerationCore
package import LocalInference
package import UpstreamProxy

/// The team's workers: a request that reached the pool is theirs, so every failure is final. Their
/// queue is what spill-over looks at.
extension LocalBackend: RoutableBackend {
    package func attempt(_ request: GenerationRequest) async throws(RouteFailure) -> GenerationResult {
        do {
            return try await generate(request)
        } catch {
            throw .failed(error)
        }
    }
}

/// An upstream: one that could not be reached never saw the request, so the route goes on.
extension UpstreamBackend: RoutableBackend {
    /// An upstream keeps no queue here: its pool waits inside the call, and spill-over never skips it.
    package var queued: Int { 0 }

    package func attempt(_ request: GenerationRequest) async throws(RouteFailure) -> GenerationResult {
        do {
            return try await send(request)
        } catch {
            switch error {
            case .unreachable: throw .notSent
            case .answered(let error): throw .failed(error)
            }
        }
    }
}
