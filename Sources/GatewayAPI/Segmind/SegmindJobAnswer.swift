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
        }
        return .json(.ok, AnswerJSON.encode(body))
    }

    /// Segmind's names of a job's phases.
    private static func status(_ phase: GenerationJob.Phase) -> String {
        switch phase {
        case .queued: "QUEUED"
        case .processing: "PROCESSING"
        case .completed: "COMPLETED"
        case .failed: "FAILED"
        }
    }

    private static func urls(_ id: String, baseURL: String) -> [String: JSONValue] {
        ["status_url": .string("\(baseURL)/v2/requests/\(id)/status"), "response_url": .string("\(baseURL)/v2/requests/\(id)")]
    }
}
