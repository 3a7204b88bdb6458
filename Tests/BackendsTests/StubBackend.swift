import Backends
import GenerationCore
import Synchronization
import TestSupport

/// A backend that lives in these tests: answers `samples` PNGs of the requested size with the
/// request's seed, or fails as it was told (after the request reached it, or without its being
/// sent at all), holds requests while held, and counts what it was sent.
final class StubBackend: RoutableBackend {
    private struct State {
        var failure: RouteFailure?
        var sent = 0
        var queued = 0
        var held: [CheckedContinuation<Void, Never>]?
    }

    private let state = Mutex(State())

    /// Fail every request from now on as told (nil: serve again).
    func fail(_ failure: RouteFailure?) { state.withLock { $0.failure = failure } }
    /// Requests this backend was sent (not those it refused unsent).
    var sent: Int { state.withLock { $0.sent } }
    /// What it says waits for it, for spill-over.
    var queued: Int {
        get { state.withLock { $0.queued } }
        set { state.withLock { $0.queued = newValue } }
    }

    /// Holds every request sent from now on until `release`.
    func hold() { state.withLock { $0.held = $0.held ?? [] } }
    var holding: Int { state.withLock { $0.held?.count ?? 0 } }
    func release() {
        for waiter in state.withLock({ state in
            defer { state.held = nil }; return state.held ?? []
        }) { waiter.resume() }
    }

    func attempt(_ request: GenerationRequest) async throws(RouteFailure) -> GenerationResult {
        let failure = state.withLock { state in
            if state.failure != .notSent { state.sent += 1 }
            return state.failure
        }
        if let failure { throw failure }
        await withCheckedContinuation { continuation in
            let waits = state.withLock { state in
                guard state.held != nil else { return false }
                state.held?.append(continuation)
                return true
            }
            if !waits { continuation.resume() }
        }
        let image = GeneratedImage(bytes: TestImages.png(width: request.width, height: request.height), format: .png)
        return GenerationResult(images: Array(repeating: image, count: request.samples), seed: request.seed, generationTime: .milliseconds(5))
    }

    func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        do {
            return try await attempt(request)
        } catch {
            switch error {
            case .notSent: throw .failed("the stub backend was not reached")
            case .failed(let error): throw error
            }
        }
    }
}
