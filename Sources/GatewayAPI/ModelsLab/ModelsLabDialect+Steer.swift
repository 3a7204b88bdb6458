import GenerationCore
public import HTTPServer
import Jobs

/// What a ModelsLab key steers besides its requests. ModelsLab documents no call that cancels one
/// request, so the gateway offers one in the style of `fetch`: `POST /api/v3/cancel/{id}` (and
/// `/api/v6/images/cancel/{id}`), or the same path without the id and `request_id` in the body, the
/// key in the body. `POST /api/v3/system_load` answers ModelsLab's documented
/// `{"queue_num": ..., "queue_time": ..., "status": "ok"}` from the gateway's queue.
extension ModelsLabDialect {
    func registerSteering(on router: inout Router, refusal: @escaping Router.Refusal) {
        for api in API.allCases {
            let path = api == .v3 ? "/api/v3/cancel" : "/api/v6/images/cancel"
            router.post("\(path)/{id}", maxBodyBytes: 64 << 10, refusal: refusal) { request, parameters in
                await cancel(request, id: parameters["id"])
            }
            router.post(path, maxBodyBytes: 64 << 10, refusal: refusal) { request, _ in await cancel(request, id: nil) }
        }
        router.post("/api/v3/system_load", maxBodyBytes: 64 << 10, refusal: refusal) { request, _ in await systemLoad(request) }
    }

    /// Only the key that submitted a job cancels it; another key's job and a made-up id are both
    /// "Request not found", and nothing changes.
    func cancel(_ request: HTTPRequest, id pathID: String?) async -> HTTPResponse {
        let body = Self.fields(of: request)
        return await admission.serveRead(Self.credentials(in: body), renderer: ModelsLabAnswer.renderer) { key throws(GatewayError) in
            guard let id = pathID ?? (try? body.get())?["request_id"]?.text else { throw .missingJobID }
            let outcome = await jobs.cancel(id, of: key.id, dialect: Self.jobDialect)
            if case .unavailable = outcome { throw .jobUnreadable }
            guard let answer = ModelsLabAnswer.cancel(outcome) else { throw .jobNotFound }
            return answer
        }
    }

    /// The jobs waiting (`queue_num`) and the seconds until the last of them would have run
    /// (`queue_time`), the figures of the jobs' own `eta`.
    func systemLoad(_ request: HTTPRequest) async -> HTTPResponse {
        await admission.serveRead(Self.credentials(in: Self.fields(of: request)), renderer: ModelsLabAnswer.renderer) { _ throws(GatewayError) in
            let load = await jobs.load()
            return ModelsLabAnswer.json([
                "status": .string("ok"), "queue_num": .integer(Int64(load.queued)), "queue_time": .number(load.seconds),
            ])
        }
    }

    /// The router's own 404 and 405 for a path under ModelsLab's APIs (`GET /api/v3/cancel/1`), in
    /// ModelsLab's error shape, keeping the status as the dialect's other server refusals do; nil
    /// for any other path.
    public static func routerRefusal(_ status: HTTPStatus, _ head: HTTPRequestHead) -> HTTPResponse? {
        guard head.target.hasPrefix("/api/v3/") || head.target.hasPrefix("/api/v6/") else { return nil }
        var answer = ModelsLabAnswer.error(status.reason)
        answer.status = status
        return answer
    }
}
