import Synchronization

/// A request to stop one generation while it runs, separate from task cancellation: a client that
/// goes away cancels its task, yet the generation it started runs on and is charged; a job that its
/// key cancels is stopped where the backend can stop it. `id` names the generation to the backend
/// (a local worker is told to stop the request with this id).
public final class GenerationStop: Sendable, Equatable {
    private struct State {
        var requested = false
        var nextHandler: UInt64 = 0
        var handlers: [UInt64: @Sendable () -> Void] = [:]
    }

    public let id: String
    private let state = Mutex(State())

    public init(id: String) {
        self.id = id
    }

    public var isRequested: Bool { state.withLock { $0.requested } }

    /// Asks the generation to stop: every handler registered runs, once.
    public func request() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.requested else { return [] }
            state.requested = true
            defer { state.handlers = [:] }
            return Array(state.handlers.values)
        }
        for handler in handlers { handler() }
    }

    /// Runs `handler` when the stop is requested (at once if it was already); the token removes it.
    public func onRequest(_ handler: @escaping @Sendable () -> Void) -> UInt64? {
        let token = state.withLock { state -> UInt64? in
            guard !state.requested else { return nil }
            state.nextHandler += 1
            state.handlers[state.nextHandler] = handler
            return state.nextHandler
        }
        if token == nil { handler() }
        return token
    }

    public func remove(_ token: UInt64?) {
        guard let token else { return }
        _ = state.withLock { $0.handlers.removeValue(forKey: token) }
    }

    /// The same generation's stop: one object per generation.
    public static func == (a: GenerationStop, b: GenerationStop) -> Bool { a === b }
}
