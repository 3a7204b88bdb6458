import Foundation
import GenerationCore
import NIOCore

/// Segmind's synchronous API as a client speaks it: `POST {base}/v1/{slug}` with the team's key in
/// `x-api-key`, and `base64: true`, so that every sample comes back in one JSON answer.
struct SegmindUpstream {
    let upstream: Upstream
    let client: UpstreamClient

    func generate(_ request: GenerationRequest, deadline: NIODeadline) async throws(UpstreamFailure) -> GenerationResult {
        let start = ContinuousClock.now
        let url = upstream.baseURL + "/v1/" + request.model
        let response = try await client.send(
            "POST", url, headers: [("x-api-key", upstream.key.secret), ("Content-Type", "application/json")],
            body: Self.body(for: request), deadline: deadline)
        guard response.status == 200 else {
            // At most 64 KiB (the client drops a longer error body), read with a bound on its values.
            let message = (try? JSONObjectReader.decode(ErrorBody.self, from: response.body))?.error
            throw .answered(UpstreamFailure.status(response.status, retryAfter: response.header("retry-after"), message: message))
        }
        guard let answer = try? JSONObjectReader.decode(Answer.self, from: response.body) else { throw .answered(UpstreamFailure.unreadable) }
        var images: [GeneratedImage] = []
        for encoded in answer.images {
            // Checked, not decoded: the member's answer carries the text as it came.
            guard let checked = CheckedBase64(encoded), let info = checked.imageInfo() else {
                throw .answered(UpstreamFailure.unreadable)
            }
            images.append(GeneratedImage(base64: checked, format: info.format))
        }
        guard !images.isEmpty else { throw .answered(UpstreamFailure.unreadable) }
        let seconds = response.header("x-generation-time").flatMap(Double.init) ?? answer.inferTime
        return GenerationResult(
            images: images,
            seed: response.header("x-seed-value").flatMap(UInt64.init) ?? request.seed,
            generationTime: seconds.flatMap(Duration.reported(seconds:)) ?? .now - start,
            upstream: UpstreamReport(
                name: upstream.name, cost: response.header("x-cost"),
                remainingCredits: response.header("x-remaining-credits"))
        )
    }

    /// The request in Segmind's field names. A field a model does not have is ignored by Segmind
    /// (and by sdgate), so the sizes are always sent. The input image is spliced in as raw base64
    /// (the client's own text when it sent base64) after the small fields are encoded: base64 needs
    /// no escaping, and the encoder need not scan a megabyte of it.
    static func body(for request: GenerationRequest) -> ByteBuffer {
        let fields = Fields(
            prompt: request.prompt, negative_prompt: request.negativePrompt, samples: request.samples,
            num_inference_steps: request.steps, guidance_scale: request.guidanceScale, strength: request.strength,
            seed: request.seed, scheduler: request.scheduler, sampler: request.sampler,
            img_width: request.width, img_height: request.height, style: request.options.style, refiner: request.options.refiner,
            high_noise_fraction: request.options.highNoiseFraction, base_model: request.options.baseModel, base64: true
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let json = (try? encoder.encode(fields)) ?? Data("{}".utf8)
        guard let image = request.image?.base64Text else { return ByteBuffer(bytes: json) }
        // Written where it is sent from: the megabyte of the image is copied once.
        var body = ByteBufferAllocator().buffer(capacity: json.count + image.count + 16)
        body.writeString(#"{"image":""#)
        body.writeBytes(image.bytes)
        body.writeString(#"","#)
        body.writeBytes(json.dropFirst())
        return body
    }

    private struct Fields: Encodable {
        let prompt: String
        let negative_prompt: String?
        let samples: Int
        let num_inference_steps: Int
        let guidance_scale: Double
        let strength: Double?
        let seed: UInt64
        let scheduler: String?
        let sampler: String?
        let img_width: Int
        let img_height: Int
        let style: String?
        let refiner: Bool?
        let high_noise_fraction: Double?
        let base_model: String?
        let base64: Bool
    }

    /// A success's body: `image`, one base64 text or a list of them, and `infer_time` (ignored
    /// unless a number). The megabytes of base64 are lifted out before `JSONDecoder` reads the rest.
    private struct Answer: Decodable {
        let images: [LiftedText]
        let inferTime: Double?

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Keys.self)
            images = try (try? [container.decode(LiftedText.self, forKey: .image)]) ?? container.decode([LiftedText].self, forKey: .image)
            inferTime = try? container.decode(Double.self, forKey: .infer_time)
        }

        private enum Keys: String, CodingKey {
            case image, infer_time
        }
    }

    private struct ErrorBody: Decodable {
        let error: String
    }
}
