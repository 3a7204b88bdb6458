import Foundation
import HTTPServer
import Jobs

/// Segmind's asynchronous API: `POST /v2/{slug}` takes the same request as
/// `/v1/{slug}`, checked and priced the same way, queues it as a job and answers at once with where
/// to poll; `GET /v2/requests/{id}/status`, `GET /v2/requests/{id}` and the legacy
/// `GET /v1/requests/{id}` answer its state. Only the key that submitted a job can read it.
extension SegmindDialect {
    /// The dialect's name on its jobs and in its usage events, v1's and v2's alike: one public API.
    static let jobDialect = "segmind"

    func registerQueued(on router: inout Router, jobs: any GenerationJobs) {
        router.post(
            "/v2/{slug}", maxBodyBytes: maxBodyBytes, checkHead: Self.requireKey, verifyHead: verifyKey, refusal: SegmindAnswer.renderer.serverRefusal
        ) { request, parameters in
            await handle(request, slug: parameters["slug"] ?? "", mode: .queued)
        }
        router.add(.get, "/v2/requests/{id}/status", checkHead: Self.requireKey) { request, parameters in
            await poll(request, id: parameters["id"] ?? "", view: .status, jobs: jobs)
        }
        for pattern in ["/v2/requests/{id}", "/v1/requests/{id}"] {
            router.add(.get, pattern, checkHead: Self.requireKey) { request, parameters in
                await poll(request, id: parameters["id"] ?? "", view: .result, jobs: jobs)
            }
        }
    }

    /// Queues an admitted request; its images become files of the output store, all of them (the
    /// answer holds URLs, so `base64` plays no part).
    func enqueue(_ admitted: AdmittedRequest, request: HTTPRequest) async throws(GatewayError) -> Outcome {
        guard let jobs else { throw .notQueued }
        let payload = GenerationJobPayload(
            request: admitted.generation,
            files: (0..<admitted.generation.samples).map { _ in OutputStore.newName(.jpeg) },
            base64: false, webhook: nil, trackID: nil, meta: [:], price: admitted.price)
        let job = try await admission.enqueue(admitted, as: payload, dialect: Self.jobDialect, on: jobs)
        return Outcome(
            response: SegmindJobAnswer.submitted(job.id, baseURL: jobs.baseURL(host: request.headers["Host"])), remaining: admitted.remaining,
            queued: true)
    }

    private func poll(_ request: HTTPRequest, id: String, view: SegmindJobAnswer.View, jobs: any GenerationJobs) async -> HTTPResponse {
        await admission.serveRead(Self.credentials(in: request.headers), renderer: SegmindAnswer.renderer) { key throws(GatewayError) in
            let job = try await admission.job(id, of: key, dialect: Self.jobDialect, on: jobs)
            return SegmindJobAnswer.answer(job, view: view, baseURL: jobs.baseURL(host: request.headers["Host"]))
        }
    }
}
