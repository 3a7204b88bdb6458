import GenerationCore
import HTTPServer
import Jobs

/// What a Segmind key steers besides its requests: cancelling its v2 jobs
/// (`DELETE /v2/requests/{id}`, `POST /v2/requests/{id}/cancel`), and reading its credits as
/// Segmind's balance widgets do (`GET /v1/get-user-credits`).
extension SegmindDialect {
    func registerSteering(on router: inout Router) {
        router.add(.get, "/v1/get-user-credits", checkHead: Self.requireKey) { request, _ in await credits(request) }
        guard let jobs else { return }
        router.add(.delete, "/v2/requests/{id}", checkHead: Self.requireKey) { request, parameters in
            await cancel(request, id: parameters["id"] ?? "", jobs: jobs)
        }
        router.add(
            .post, "/v2/requests/{id}/cancel", maxBodyBytes: 64 << 10, checkHead: Self.requireKey, refusal: SegmindAnswer.renderer.serverRefusal
        ) { request, parameters in
            await cancel(request, id: parameters["id"] ?? "", jobs: jobs)
        }
    }

    /// Only the key that submitted a job cancels it; another key's job and a made-up id are both
    /// 404, and nothing changes.
    private func cancel(_ request: HTTPRequest, id: String, jobs: any GenerationJobs) async -> HTTPResponse {
        await admission.serveRead(Self.credentials(in: request.headers), renderer: SegmindAnswer.renderer) { key throws(GatewayError) in
            let outcome = await jobs.cancel(id, of: key.id, dialect: Self.jobDialect)
            if case .unavailable = outcome { throw .jobUnreadable }
            guard let answer = SegmindJobAnswer.cancel(outcome) else { throw .jobNotFound }
            return answer
        }
    }

    /// `{"credits": <what the key can spend now>, "free-credits": 0}`: the figure of
    /// `x-remaining-credits`, as an exact decimal number.
    private func credits(_ request: HTTPRequest) async -> HTTPResponse {
        await admission.serveRead(Self.credentials(in: request.headers), renderer: SegmindAnswer.renderer) { key throws(GatewayError) in
            guard let remaining = await admission.gate.remaining(for: key) else { throw .creditsUnavailable }
            return .json(.ok, Array(#"{"credits":\#(remaining),"free-credits":0}"#.utf8))
        }
    }
}
