public import GenerationCore
public import HTTPServer

extension Admission {
    /// Runs an admitted request at once with its hold kept open, then charges the images the backend
    /// delivered (fewer than asked for cost less; none is a failure) whether or not the client is
    /// still there: the team paid for the work either way. A failure releases the hold and is
    /// answered through the renderer.
    public func generate(
        _ admitted: AdmittedRequest, on backend: any InferenceBackend, call: Call, renderer: some DialectRenderer,
        answer: (_ result: GenerationResult, _ charge: Credits) async -> HTTPResponse
    ) async -> Outcome {
        let failure: InferenceError
        do {
            var result = try await gate.generate(admitted.generation, on: backend, holding: admitted.hold)
            result.images = Array(result.images.prefix(admitted.generation.samples))
            if !result.images.isEmpty {
                let charge = admitted.price.cost(images: result.images.count)
                var outcome = Outcome(response: await answer(result, charge))
                (outcome.charged, outcome.held, outcome.upstream, outcome.usageRecorded) = (charge, admitted.cost, result.upstream, true)
                let event = call.usage(of: outcome)
                outcome.remaining = await uncancelled { [gate] in await gate.settle(admitted.hold, charge: charge, recording: event) }
                return outcome
            }
            failure = .failed("the backend returned no images")
        } catch {
            failure = error
        }
        var outcome = Outcome(refusal: .generationFailed(failure), renderer: renderer)
        outcome.held = admitted.cost
        outcome.remaining = await uncancelled { [gate] in await gate.release(admitted.hold, reason: failure.description) }
        return outcome
    }
}
