import Foundation
public import GenerationCore
public import HTTPServer

/// The answers of AUTOMATIC1111's API: `{"images", "parameters", "info"}` for a generation, and
/// its error object (`error`, `detail`, `body`, `errors`) under the HTTP status.
enum A1111Answer {
    static func images(
        _ result: GenerationResult, request: A1111Request, generation: GenerationRequest, body: [String: JSONValue], task: GenerationTask
    ) -> HTTPResponse {
        let count = result.images.count
        // The seed of image i, as the workers derive it.
        let seeds = (0..<count).map { JSONValue.string(String(result.seed &+ UInt64($0))) }
        var parameters = body
        if task == .imageToImage { parameters["init_images"] = .null }
        let info: JSONValue = .object([
            "prompt": .string(generation.prompt), "all_prompts": .array(Array(repeating: .string(generation.prompt), count: count)),
            "negative_prompt": .string(generation.negativePrompt ?? ""),
            "all_negative_prompts": .array(Array(repeating: .string(generation.negativePrompt ?? ""), count: count)),
            // Seeds go past 2^53, where JSON numbers read as doubles lose digits: the seed itself as a
            // number (A1111's type), every seed also exactly as text.
            "seed": .integer(Int64(truncatingIfNeeded: result.seed)), "all_seeds": .array(seeds), "subseed": .integer(-1),
            "width": .integer(Int64(generation.width)), "height": .integer(Int64(generation.height)),
            "sampler_name": body["sampler_name"] ?? .null, "cfg_scale": .number(generation.guidanceScale),
            "steps": .integer(Int64(generation.steps)), "batch_size": .integer(Int64(count)),
            "denoising_strength": generation.strength.map(JSONValue.number) ?? .null, "sd_model_name": .string(request.checkpoint),
            "sd_model_checkpoint": .string(request.checkpoint), "index_of_first_image": .integer(0), "styles": .array([]),
            "restore_faces": .bool(false), "infotexts": .array(Array(repeating: .string(generation.prompt), count: count)),
        ])
        var splices = SplicedJSON()
        let answer: JSONValue = .object([
            "images": .array(result.images.map { .string(splices.base64(of: $0)) }), "parameters": .object(parameters),
            "info": .string(String(decoding: AnswerJSON.encode(info), as: UTF8.self)),
        ])
        return .json(.ok, AnswerJSON.encode(answer, splicing: splices))
    }

    struct Renderer: DialectRenderer {
        func render(_ error: GatewayError) -> HTTPResponse {
            var headers = error.headers
            var status = error.status
            switch error {
            case .missingKey, .invalidKey: headers.set("WWW-Authenticate", #"Basic realm="sdgate""#)
            // A1111 has no credits; 402 says what a client can act on.
            case .insufficientCredits: status = HTTPStatus(code: 402)
            // FastAPI answers a body it cannot read with 422.
            case .malformedBody, .unsupportedContentType: status = .unprocessableContent
            default: break
            }
            let message = error == .invalidKey || error == .missingKey ? "Incorrect username or password" : error.message
            let body: JSONValue = .object([
                "error": .string(error.code), "detail": .string(message), "body": .string(""), "errors": .string(message),
            ])
            return .json(status, AnswerJSON.encode(body), headers: headers)
        }
    }

    static let renderer = Renderer()

}
