import Synchronization

/// The generation calls under way in this process. A gateway that stops waits for them: once a
/// call has reached an upstream or a worker, the team pays for it, and it is charged (or released)
/// only when it ends; a process that exited first would leave its hold to expire, uncharged.
public final class CallsInFlight: Sendable {
    private struct State {
        var count = 0
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// The calls under way now.
    public var count: Int { state.withLock { $0.count } }

    /// Runs `call`, counted as under way until it returns.
    public func run<T: Sendable>(_ call: () async -> T) async -> T {
        state.withLock { $0.count += 1 }
        defer {
            let drained = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.count -= 1
                guard state.count == 0 else { return [] }
                defer { state.waiters = [:] }
                return Array(state.waiters.values)
            }
            for waiter in drained { waiter.resume() }
        }
        return await call()
    }

    /// Waits until no call is under way, or `limit` has passed; the calls still under way then.
    public func drained(within limit: Duration) async -> Int {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiter = state.withLock { state -> UInt64? in
                guard state.count > 0 else { return nil }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = continuation
                return state.nextWaiter
            }
            guard let waiter else { return continuation.resume() }
            // Whichever comes first resumes the waiter, once: the last call's end or this timer.
            Task {
                try? await Task.sleep(for: limit)
                self.state.withLock { $0.waiters.removeValue(forKey: waiter) }?.resume()
            }
        }
        return count
    }
}
