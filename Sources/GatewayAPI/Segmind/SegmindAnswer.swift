import Foundation
public import GenerationCore
public import HTTPServer

/// The answers of the Segmind dialect, as Segmind's clients read them: errors are JSON
/// `{"error": "..."}`; a success is raw image bytes (`base64: false`) or the base64 JSON shape.
public enum SegmindAnswer {
    public static func error(_ status: HTTPStatus, _ message: String, headers: HTTPHeaders = [:]) -> HTTPResponse {
        .json(status, AnswerJSON.encode(["error": message]), headers: headers)
    }

    /// Refusals and failures as `{"error": "..."}` under their HTTP status, in the gateway's words
    /// (which are Segmind's), with Segmind's rate-limit headers.
    struct Renderer: DialectRenderer {
        func render(_ error: GatewayError) -> HTTPResponse {
            if case .rateLimited(let wait, let resetAt) = error { return rateLimited(retryAfter: wait, resetAt: resetAt) }
            return SegmindAnswer.error(error.status, error.message, headers: error.headers)
        }
    }

    static let renderer = Renderer()

    /// 200 with the images, and the headers clients read: cost, seed, generation time.
    public static func success(_ result: GenerationResult, base64: Bool, cost: Credits) -> HTTPResponse {
        let seconds = result.generationTime.seconds
        let rounded = (seconds * 1000).rounded() / 1000
        var headers: HTTPHeaders = [
            "x-cost": cost.description,
            "x-generation-time": String(rounded),
            "x-seed-value": String(result.seed),
        ]
        guard base64 else {
            let image = result.images.first
            headers.set("Content-Type", (image?.format ?? .jpeg).mediaType)
            return HTTPResponse(status: .ok, headers: headers, bytes: image?.bytes ?? [])
        }
        var splices = SplicedJSON()
        let encoded = result.images.map { splices.base64(of: $0) }
        let body = SuccessBody(
            image: encoded.count == 1 ? .one(encoded[0]) : .many(encoded),
            status: "Success",
            infer_time: rounded,
            outputs: result.images.count,
            image_format: (result.images.first?.format ?? .jpeg).rawValue
        )
        return .json(.ok, AnswerJSON.encode(body, splicing: splices), headers: headers)
    }

    /// 429 with a standard `Retry-After` (whole seconds, rounded up) and Segmind's
    /// `x-rate-limit-reset-at-utc`, the moment the next request is allowed.
    static func rateLimited(retryAfter seconds: Double, resetAt: Double) -> HTTPResponse {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        var headers = GatewayError.rateLimited(retryAfter: seconds, resetAt: resetAt).headers
        headers.set("x-rate-limit-reset-at-utc", formatter.string(from: Date(timeIntervalSince1970: resetAt)))
        return error(.tooManyRequests, "Rate limit exceeded", headers: headers)
    }

    private struct SuccessBody: Encodable {
        enum Images: Encodable {
            case one(String)
            case many([String])

            func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                switch self {
                case .one(let image): try container.encode(image)
                case .many(let images): try container.encode(images)
                }
            }
        }

        let image: Images
        let status: String
        let infer_time: Double
        let outputs: Int
        let image_format: String
    }

}
