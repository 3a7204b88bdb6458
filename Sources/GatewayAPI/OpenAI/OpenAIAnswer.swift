import Foundation
public import GenerationCore
public import HTTPServer

/// The answers of OpenAI's Images API, as its SDKs read them: `{"created", "data": [...]}` for
/// images, `{"error": {"message", "type", "param", "code"}}` under OpenAI's statuses for refusals.
enum OpenAIAnswer {
    /// How the images of a success travel.
    enum Delivery: Sendable {
        case base64
        /// Links into the output store, which keeps them for its retention.
        case links(OutputLinks, host: String?)
    }

    static func images(_ result: GenerationResult, delivery: Delivery, created: Int64) async -> HTTPResponse {
        var data: [JSONValue] = []
        var splices = SplicedJSON()
        for image in result.images {
            if case .links(let links, let host) = delivery, let url = await links.save(image, host: host) {
                data.append(.object(["url": .string(url)]))
            } else {
                // Also when an image could not be kept: it is delivered (and charged) in the answer itself.
                data.append(.object(["b64_json": .string(splices.base64(of: image))]))
            }
        }
        var body: [String: JSONValue] = ["created": .integer(created), "data": .array(data)]
        if let first = result.images.first {
            body["output_format"] = .string(first.format == .jpeg ? "jpeg" : first.format.rawValue)
            if let info = first.info { body["size"] = .string("\(info.width)x\(info.height)") }
        }
        return .json(.ok, AnswerJSON.encode(JSONValue.object(body), splicing: splices))
    }

    struct Renderer: DialectRenderer {
        func render(_ error: GatewayError) -> HTTPResponse {
            let (status, type, code) = classify(error)
            var headers = error.headers
            if case .rateLimited(let wait, _) = error {
                headers.set("x-ratelimit-remaining-requests", "0")
                headers.set("x-ratelimit-reset-requests", "\(Int(wait.rounded(.up)))s")
            }
            // OpenAI's SDKs retry a 429 unless told not to: more credits will not come by waiting.
            if error == .insufficientCredits { headers.set("x-should-retry", "false") }
            let body: JSONValue = .object([
                "error": .object([
                    "message": .string(message(error)), "type": .string(type),
                    "param": OpenAIAnswer.param(of: error).map(JSONValue.string) ?? .null,
                    "code": code.map(JSONValue.string) ?? .null,
                ])
            ])
            return .json(status, AnswerJSON.encode(body), headers: headers)
        }

        private func classify(_ error: GatewayError) -> (HTTPStatus, type: String, code: String?) {
            switch error {
            case .missingKey: (.unauthorized, "invalid_request_error", nil)
            case .invalidKey: (.unauthorized, "invalid_request_error", "invalid_api_key")
            case .rateLimited: (.tooManyRequests, "requests", "rate_limit_exceeded")
            case .insufficientCredits: (.tooManyRequests, "insufficient_quota", "insufficient_quota")
            case .unknownModel: (.notFound, "invalid_request_error", "model_not_found")
            case .modelNotAllowed: (HTTPStatus(code: 403), "invalid_request_error", error.code)
            case .generationFailed(.unsupported): (.badRequest, "invalid_request_error", error.code)
            default:
                error.status.code >= 500
                    ? (error.status, "server_error", error.code)
                    : (
                        error.status == .unprocessableContent || error.status == .notAcceptable ? .badRequest : error.status, "invalid_request_error",
                        error.code
                    )
            }
        }

        private func message(_ error: GatewayError) -> String {
            switch error {
            case .missingKey:
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            case .invalidKey: "Incorrect API key provided. It is unknown, revoked or expired on this gateway."
            case .insufficientCredits: "You exceeded your current quota: this key has not enough credits left for this request."
            case .unknownModel(let model): "The model '\(model.brief)' does not exist or you do not have access to it."
            default: error.message
            }
        }
    }

    static let renderer = Renderer()

    /// The request field a refusal is about: the first problem's field, or the field a refusal
    /// concerns by its nature.
    static func param(of error: GatewayError) -> String? {
        switch error {
        case .unknownModel, .modelNotAllowed: return "model"
        case .invalidImage(let field, _): return field
        case .invalidFields(let problems):
            return problems.first.flatMap { $0.range(of: ": ").map { problem in String(problems[0][..<problem.lowerBound]) } }
        case .unavailableOption(let why), .malformedForm(let why):
            return why.range(of: ": ").map { String(why[..<$0.lowerBound]) }.flatMap { $0.contains(" ") ? nil : $0 }
        default: return nil
        }
    }

}
