import GenerationCore
public import HTTPServer
public import Jobs

/// The answers of Segmind's asynchronous API (contract section 1.5): the submit answer with the
/// poll, status and response URLs; the status (`QUEUED`, `PROCESSING`, `COMPLETED`, or `FAILED`
/// with its `error`, served under HTTP 422 as Segmind does); and the result, whose `output` is the
/// image's URL (a list of URLs for several samples).
public enum SegmindJobAnswer {
    public enum View: Sendable {
        /// `GET /v2/requests/{id}/status`.
        case status
        /// `GET /v2/requests/{id}` and `GET /v1/requests/{id}`.
        case result
    }

    public static func submitted(_ id: String, baseURL: String) -> HTTPResponse {
        var body = urls(id, baseURL: baseURL)
        body["request_id"] = .string(id)
        body["status"] = .string("QUEUED")
        body["poll_url"] = .string("\(baseURL)/v1/requests/\(id)")
        return .json(.ok, AnswerJSON.encode(body))
    }

    public static func answer(_ job: GenerationJob, view: View, baseURL: String) -> HTTPResponse {
        var body: [String: JSONValue] = ["request_id": .string(job.id), "status": .string(status(job.phase)), "metrics": .object([:])]
        switch job.phase {
        case .queued, .processing:
            body.merge(urls(job.id, baseURL: baseURL)) { $1 }
            body.merge(standing(job)) { $1 }
        case .completed:
            body["metrics"] = .object(["inference_time": .number(((job.result?.generationSeconds ?? 0) * 1000).rounded() / 1000)])
            if view == .result {
                let outputs = job.files.map { JSONValue.string("\(baseURL)/generations/\($0)") }
                body["output"] = outputs.count == 1 ? outputs[0] : .array(outputs)
                if let seed = job.result?.seed { body["seed"] = .integer(Int64(clamping: seed)) }
            }
        case .failed:
            body["error"] = .string(job.error ?? "the generation failed")
            return .json(.unprocessableContent, AnswerJSON.encode(body))
        case .cancelled:
            // FAILED, which clients know as an end, with `cancelled` to tell it apart.
            body["error"] = .string(GenerationJob.cancelledMessage(job))
            body["cancelled"] = .bool(true)
            return .json(.unprocessableContent, AnswerJSON.encode(body))
        }
        return .json(.ok, AnswerJSON.encode(body))
    }

    /// A waiting or running job's place in the queue (`queue_position`: 1 is next, 0 is running)
    /// and the seconds until it is expected to end (`eta`), from measured generation times; and
    /// `cancel_requested` once its key cancelled it while it ran.
    static func standing(_ job: GenerationJob) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        if let standing = job.standing {
            fields["queue_position"] = .integer(Int64(standing.position))
            fields["eta"] = .number(standing.etaSeconds)
        }
        if job.cancelRequested { fields["cancel_requested"] = .bool(true) }
        return fields
    }

    /// The answer to a cancel: 200 `CANCELLED` for a job removed from the queue (nothing charged);
    /// 202 `CANCELLING` for a running one, which ends undelivered; 409 for one that had ended.
    public static func cancel(_ outcome: JobCancelOutcome) -> HTTPResponse? {
        switch outcome {
        case .cancelled(let job):
            let body: [String: JSONValue] = [
                "request_id": .string(job.id), "status": .string("CANCELLED"),
                "message": .string("The request was removed from the queue; nothing is charged"),
            ]
            return .json(.ok, AnswerJSON.encode(body))
        case .stopping(let job):
            var body: [String: JSONValue] = [
                "request_id": .string(job.id), "status": .string("CANCELLING"),
                "message": .string(
                    "The request is running: it stops at its next step on a local worker, or runs to its end upstream; it is not delivered"),
            ]
            body.merge(standing(job)) { $1 }
            return .json(HTTPStatus(code: 202), AnswerJSON.encode(body))
        case .ended(let job):
            let body: [String: JSONValue] = [
                "request_id": .string(job.id), "status": .string(status(job.phase)), "error": .string("The request has already ended"),
            ]
            return .json(HTTPStatus(code: 409), AnswerJSON.encode(body))
        case .notFound, .unavailable:
            return nil
        }
    }

    /// Segmind's names of a job's phases.
    private static func status(_ phase: GenerationJob.Phase) -> String {
        switch phase {
        case .queued: "QUEUED"
        case .processing: "PROCESSING"
        case .completed: "COMPLETED"
        case .failed, .cancelled: "FAILED"
        }
    }

    private static func urls(_ id: String, baseURL: String) -> [String: JSONValue] {
        ["status_url": .string("\(baseURL)/v2/requests/\(id)/status"), "response_url": .string("\(baseURL)/v2/requests/\(id)")]
    }
}
