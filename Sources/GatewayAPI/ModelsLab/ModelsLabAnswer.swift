import Foundation
public import GenerationCore
public import HTTPServer
public import Jobs

/// The ModelsLab v3 answers. Every answer is HTTP 200 with a `status`
/// field, as legacy clients expect; errors carry `message` and its legacy misspelling `messege`.
public enum ModelsLabAnswer {
    /// Refusals and failures as v3 errors, in ModelsLab's words where ModelsLab has its own.
    struct Renderer: DialectRenderer {
        func render(_ error: GatewayError) -> HTTPResponse {
            switch error {
            case .missingKey, .invalidKey: ModelsLabAnswer.error("Invalid Api Key")
            case .insufficientCredits: ModelsLabAnswer.error("Insufficient credits. Please add more credits to continue.")
            case .malformedBody: ModelsLabAnswer.error("The request body must be a JSON object or a form")
            case .invalidFields(let problems): invalid(problems)
            case .invalidImage(let field, let reason): ModelsLabAnswer.error("Unable to fetch image from provided URL: \(field): \(reason)")
            case .rateLimited(let wait, _):
                ModelsLabAnswer.error(error.message, extra: ["retry_after": .integer(Int64(wait.rounded(.up)))], headers: error.headers)
            default: ModelsLabAnswer.error(error.message, headers: error.headers)
            }
        }
    }

    static let renderer = Renderer()

    public static func error(_ message: String, extra: [String: JSONValue] = [:], headers: HTTPHeaders = [:]) -> HTTPResponse {
        var body = extra
        body["status"] = .string("error")
        body["message"] = .string(message)
        body["messege"] = .string(message)
        return json(body, headers: headers)
    }

    /// Field problems, Laravel style: `{"message": {"width": ["must be divisible by 8, got 500"]}}`.
    public static func invalid(_ problems: [String]) -> HTTPResponse {
        var fields: [String: JSONValue] = [:]
        for problem in problems {
            let parts = problem.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let (name, text) = parts.count == 2 ? (parts[0], parts[1]) : ("request", problem)
            if case .array(let texts)? = fields[name] {
                fields[name] = .array(texts + [.string(text)])
            } else {
                fields[name] = .array([.string(text)])
            }
        }
        return json(["status": .string("error"), "message": .object(fields), "messege": .object(fields)])
    }

    /// A job's state as v3 answers it: success with the output URLs, failed with the reason, or
    /// still processing with where and when to fetch it.
    /// - Parameter fetchPath: where the API the client called fetches a job (`/api/v3/fetch/`).
    public static func job(_ job: GenerationJob, baseURL: String, fetchPath: String) -> HTTPResponse {
        json(body(job, baseURL: baseURL, fetchPath: fetchPath))
    }

    /// The answer to a cancel: `success` for a job removed from the queue (nothing charged),
    /// `processing` with `cancel_requested` for a running one (it ends undelivered), an error for
    /// one that had ended.
    public static func cancel(_ outcome: JobCancelOutcome) -> HTTPResponse? {
        switch outcome {
        case .cancelled(let job):
            let message = "Request cancelled: it was removed from the queue and nothing is charged"
            return json(["status": .string("success"), "id": .integer(job.publicID), "message": .string(message), "messege": .string(message)])
        case .stopping(let job):
            let message = "Cancel requested: the request stops at its next step on a local worker, or runs to its end upstream, and is not delivered"
            var body: [String: JSONValue] = [
                "status": .string("processing"), "id": .integer(job.publicID), "message": .string(message), "messege": .string(message),
                "cancel_requested": .bool(true),
            ]
            if let standing = job.standing { body["eta"] = .number(standing.etaSeconds) }
            return json(body)
        case .ended(let job):
            return error("The request has already ended", extra: ["id": .integer(job.publicID)])
        case .notFound, .unavailable:
            return nil
        }
    }

    /// What a job's webhook POSTs when it ends: the body `fetch` answers then (`track_id` included).
    public struct WebhookRenderer: JobWebhookRenderer {
        public init() {}

        public func webhookBody(_ job: GenerationJob) -> [UInt8] {
            AnswerJSON.encode(ModelsLabAnswer.body(job, baseURL: job.payload.baseURL ?? "", fetchPath: "/api/v3/fetch/"))
        }
    }

    private static func body(_ job: GenerationJob, baseURL: String, fetchPath: String) -> [String: JSONValue] {
        let payload = job.payload
        let urls = JSONValue.array(job.files.map { .string("\(baseURL)/generations/\($0)") })
        // An integer, as ModelsLab sends it and typed clients declare it.
        var body: [String: JSONValue] = ["id": .integer(job.publicID), "meta": .object(payload.meta)]
        if let trackID = payload.trackID { body["track_id"] = .string(trackID) }
        switch job.phase {
        case .completed:
            body["status"] = .string("success")
            body["output"] = urls
            body["proxy_links"] = urls
            body["nsfw_content_detected"] = .bool(false)
            body["generationTime"] = .number(((job.result?.generationSeconds ?? 0) * 100).rounded() / 100)
            if let seed = job.result?.seed, case .object(var meta)? = body["meta"] {
                meta["seed"] = .integer(Int64(clamping: seed))
                body["meta"] = .object(meta)
            }
        case .failed, .cancelled:
            let message = job.phase == .cancelled ? GenerationJob.cancelledMessage(job) : job.error ?? "Failed, Try Again"
            body["status"] = .string("failed")
            body["message"] = .string(message)
            body["messege"] = .string(message)
            body["output"] = .array([])
            if job.phase == .cancelled { body["cancelled"] = .bool(true) }
        case .queued, .processing:
            let message = "Try to fetch request after given estimated time"
            body["status"] = .string("processing")
            // Measured (`JobTimings`): the seconds until it is expected to end, and its place in
            // the queue (1: next; 0: running).
            body["eta"] = .number(job.standing?.etaSeconds ?? JobTimings.unmeasuredSeconds)
            if let standing = job.standing { body["queue_position"] = .integer(Int64(standing.position)) }
            if job.cancelRequested { body["cancel_requested"] = .bool(true) }
            body["message"] = .string(message)
            body["messege"] = .string(message)
            body["tip"] = .string("the generation runs in the background: fetch it, or wait for the webhook")
            body["fetch_result"] = .string("\(baseURL)\(fetchPath)\(job.publicID)")
            body["future_links"] = urls
            body["output"] = .array([])
        }
        return body
    }

    static func json(_ body: [String: JSONValue], headers: HTTPHeaders = [:]) -> HTTPResponse {
        .json(.ok, AnswerJSON.encode(body), headers: headers)
    }
}
