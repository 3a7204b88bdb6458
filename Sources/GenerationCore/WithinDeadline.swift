/// Thrown by `withinDeadline` when the deadline came first.
public struct DeadlinePassed: Error, Sendable {
    public init() {}
}

/// `operation`'s result; or, once `deadline` has come, `DeadlinePassed`, with the operation
/// cancelled. For an HTTP exchange read to its end: AsyncHTTPClient's own deadline (its async
/// `execute(_:timeout:)`) ends when the answer's head arrives, and a peer that then sends its body
/// a byte every few seconds would hold the reader, and what it has read, for as long as it liked.
public func withinDeadline<T: Sendable>(
    _ deadline: ContinuousClock.Instant, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(until: deadline, clock: .continuous)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else { throw DeadlinePassed() }
        return result
    }
}
