public import GenerationCore
public import HTTPServer

/// Why the gateway refused or failed a request, in every dialect's terms: a stable code, an HTTP
/// status, and a message that is safe to show the client. Admission and the job queue produce these;
/// each dialect only renders them (`DialectRenderer`), in its vendor's shape and, where the vendor
/// has its own wording, in that wording.
public enum GatewayError: Error, Sendable, Equatable {
    case missingKey
    case invalidKey
    /// Seconds until the key may call again, and when that is (seconds since 1970).
    case rateLimited(retryAfter: Double, resetAt: Double)
    case unknownModel(String)
    case modelNotAllowed(String)
    case unsupportedContentType
    case malformedBody
    /// A multipart/form-data body that cannot be read, and why.
    case malformedForm(String)
    /// The server refused the request while reading it (a body too large, too slow, malformed):
    /// its status and why.
    case unreadableRequest(HTTPStatus, String)
    /// Every problem with the fields, each `name: problem`.
    case invalidFields([String])
    /// An option this gateway does not offer (a field name and why, for the client).
    case unavailableOption(String)
    case invalidWebhook(String)
    /// The input image could not be loaded: the field's name and why.
    case invalidImage(field: String, reason: String)
    case insufficientCredits
    case creditsUnavailable
    /// The key has `limit` jobs waiting already.
    case tooManyJobs(limit: Int)
    case notQueued
    case invalidIdempotencyKey
    case idempotencyInProgress
    case idempotencyMismatch
    case idempotencyUnavailable
    /// The request was fine; its generation was not.
    case generationFailed(InferenceError)
    /// Another key's job, a made-up id and a job past its retention look the same.
    case jobNotFound
    case missingJobID
    case jobUnreadable

    /// Stable across releases: what logs, metrics and the newer dialects' `code` fields say.
    public var code: String {
        switch self {
        case .missingKey: "missing_api_key"
        case .invalidKey: "invalid_api_key"
        case .rateLimited: "rate_limit_exceeded"
        case .unknownModel: "model_not_found"
        case .modelNotAllowed: "model_not_allowed"
        case .unsupportedContentType: "unsupported_content_type"
        case .malformedBody, .malformedForm: "malformed_body"
        case .unreadableRequest(let status, _):
            switch status.code {
            case 413: "request_too_large"
            case 408: "request_timeout"
            case 503: "server_busy"
            default: "unreadable_request"
            }
        case .invalidFields: "invalid_fields"
        case .unavailableOption: "unavailable_option"
        case .invalidWebhook: "invalid_webhook"
        case .invalidImage: "invalid_image"
        case .insufficientCredits: "insufficient_credits"
        case .creditsUnavailable: "credits_unavailable"
        case .tooManyJobs: "too_many_jobs"
        case .notQueued: "not_queued"
        case .invalidIdempotencyKey: "invalid_idempotency_key"
        case .idempotencyInProgress: "idempotency_in_progress"
        case .idempotencyMismatch: "idempotency_mismatch"
        case .idempotencyUnavailable: "idempotency_unavailable"
        case .generationFailed: "generation_failed"
        case .jobNotFound: "request_not_found"
        case .missingJobID: "missing_request_id"
        case .jobUnreadable: "request_unreadable"
        }
    }

    /// The status of a dialect that answers with HTTP statuses (Segmind's, and the usage report's).
    public var status: HTTPStatus {
        switch self {
        case .missingKey, .invalidKey: .unauthorized
        case .rateLimited, .tooManyJobs: .tooManyRequests
        case .unknownModel, .jobNotFound: .notFound
        case .modelNotAllowed: HTTPStatus(code: 403)
        case .unsupportedContentType, .insufficientCredits: .notAcceptable
        case .malformedBody, .malformedForm, .invalidImage, .missingJobID: .badRequest
        case .invalidFields, .unavailableOption, .invalidWebhook, .invalidIdempotencyKey, .idempotencyMismatch: .unprocessableContent
        case .idempotencyInProgress: HTTPStatus(code: 409)
        case .creditsUnavailable, .notQueued, .idempotencyUnavailable, .jobUnreadable: .serviceUnavailable
        case .unreadableRequest(let status, _): status
        case .generationFailed(let failure):
            switch failure {
            case .busy, .upstreamRefused(_, _?): .serviceUnavailable
            case .timedOut: .gatewayTimeout
            case .unsupported: .unprocessableContent
            case .upstreamRefused, .failed: .badGateway
            }
        }
    }

    /// The gateway's own words; a dialect whose vendor words it otherwise says so in its renderer.
    public var message: String {
        switch self {
        case .missingKey: "Missing Authorization or x-api-key"
        case .invalidKey: "API key is invalid or may have expired"
        case .rateLimited: "Rate limit exceeded"
        case .unknownModel(let model): "Model '\(model.brief)' does not exist"
        case .modelNotAllowed(let model): "This API key may not use model '\(model)'"
        case .unsupportedContentType: "Content-Type must be application/json"
        case .malformedBody: "The request body must be a JSON object"
        case .invalidFields(let problems): problems.joined(separator: "; ")
        case .unavailableOption(let why), .invalidWebhook(let why), .malformedForm(let why), .unreadableRequest(_, let why): why
        case .invalidImage(let field, let reason): "\(field): Invalid image URL or path: \(reason)"
        case .insufficientCredits: "Insufficient credits"
        case .creditsUnavailable: "credits cannot be checked right now; retry later"
        case .tooManyJobs(let limit): "This API key has \(limit) jobs queued already, the most it may; retry when one has finished"
        case .notQueued: "The request could not be queued; retry later"
        case .invalidIdempotencyKey: "Idempotency-Key must have 1 to 255 characters"
        case .idempotencyInProgress: "A request with this Idempotency-Key is still running"
        case .idempotencyMismatch: "Idempotency-Key was already used for a different request"
        case .idempotencyUnavailable: "Idempotency-Key cannot be checked right now; retry later"
        case .generationFailed(let failure): failure.description
        case .jobNotFound: "Request not found"
        case .missingJobID: "request_id: is required"
        case .jobUnreadable: "The request could not be read; fetch it later"
        }
    }

    /// Headers every rendering carries: when to retry.
    public var headers: HTTPHeaders {
        switch self {
        case .rateLimited(let wait, _): ["Retry-After": String(Int(wait.rounded(.up)))]
        case .tooManyJobs: ["Retry-After": "5"]
        case .generationFailed(.busy(let wait)), .generationFailed(.upstreamRefused(_, let wait?)):
            ["Retry-After": String(wait.wholeSecondsRoundedUp)]
        default: [:]
        }
    }
}

/// A dialect's one way of answering a `GatewayError`.
public protocol DialectRenderer: Sendable {
    func render(_ error: GatewayError) -> HTTPResponse
}

extension DialectRenderer {
    /// The server's own refusals of the dialect's requests, in the dialect's shape.
    var serverRefusal: Router.Refusal { { status, reason in render(.unreadableRequest(status, reason)) } }
}
