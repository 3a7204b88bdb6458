package import GenerationCore

/// A backend a route can pass over. Besides generating, it says whether a failed request was
/// sent at all (only then may the route try its next entry without generating twice), and how
/// many requests wait for it (for spill-over).
package protocol RoutableBackend: InferenceBackend {
    /// Requests waiting for this backend now; 0 for one without a queue of its own.
    var queued: Int { get }
    /// `generate`, with a failure that tells whether anything was sent.
    func attempt(_ request: GenerationRequest) async throws(RouteFailure) -> GenerationResult
}

/// Why one route entry produced no result.
package enum RouteFailure: Error, Sendable, Equatable {
    /// Nothing was sent (an upstream that could not be reached): the next entry may take the request.
    case notSent
    /// The backend had the request: its answer is the member's, and no other entry is tried.
    case failed(InferenceError)
}
