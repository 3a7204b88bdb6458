package import GenerationCore

/// The backend of a gateway with none configured: every generation answers 503, saying why.
package struct NoBackend: InferenceBackend {
    package init() {}

    package func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        throw .upstreamRefused("no backend is configured for model '\(request.model)'", retryAfter: .seconds(60))
    }
}
