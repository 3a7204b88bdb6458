import AsyncHTTPClient
import Foundation
import GenerationCore
import NIOCore

/// Talks the worker's HTTP+JSON protocol (see `Worker/README.md`): `GET /health`, `POST /generate`,
/// `POST /cancel`.
struct WorkerClient: Sendable {
    let http: HTTPClient

    /// What a worker's health check says.
    enum Health: Equatable {
        /// It answers and is free for a job; it takes up to `capacity` requests at once (its
        /// `--max-batch`, which it runs together when they are compatible).
        case ready(capacity: Int)
        /// It answers, and is running a generation.
        case busy
        /// No answer within the timeout, or not "ok".
        case unreachable
    }

    func health(_ base: String, timeout: Duration) async -> Health {
        // The deadline covers the body too (the client's own ends with the head).
        let answer = try? await withinDeadline(.now + timeout) {
            let response = try await http.execute(HTTPClientRequest(url: base + "/health"), timeout: .milliseconds(timeout.wholeMilliseconds))
            return (response.status, try await response.body.collect(upTo: 1 << 16))
        }
        guard let (status, body) = answer, status == .ok,
            let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any],
            json["status"] as? String == "ok"
        else {
            return .unreachable
        }
        return json["busy"] as? Bool == true ? .busy : .ready(capacity: Self.capacity(json["max_batch"]))
    }

    /// The most requests a worker may hold, from its health answer: absent (an older worker) or
    /// out of range, one.
    static func capacity(_ value: Any?) -> Int {
        guard let count = value as? Int, (1...maxCapacity).contains(count) else { return 1 }
        return count
    }

    /// The worker's own upper bound for `--max-batch`.
    static let maxCapacity = 64

    /// Runs `request` on the worker at `base`, which knows it by `id` (for a cancel).
    func generate(
        _ request: GenerationRequest, id: String, at base: String, token: String?, deadline: Duration
    ) async throws(InferenceError) -> GenerationResult {
        var call = HTTPClientRequest(url: base + "/generate")
        call.method = .POST
        call.headers.add(name: "Content-Type", value: "application/json")
        if let token { call.headers.add(name: "Authorization", value: "Bearer \(token)") }
        call.body = .bytes(ByteBuffer(bytes: Self.body(of: request, id: id)))
        let status: Int, answer: ByteBuffer?
        do {
            // The deadline covers the answer's body too (the client's own ends with its head).
            (status, answer) = try await withinDeadline(.now + deadline) { [call] in
                let response = try await http.execute(call, timeout: .milliseconds(deadline.wholeMilliseconds))
                guard response.status == .ok else {
                    // An error's words are short; a longer body is not read, nor built into values.
                    return (Int(response.status.code), try? await response.body.collect(upTo: Self.maxErrorBytes))
                }
                return (200, try await response.body.collect(upTo: Self.maxAnswerBytes))
            }
        } catch is DeadlinePassed {
            throw .timedOut
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw .timedOut
        } catch {
            throw .failed("the local worker did not answer")
        }
        guard status == 200, let answer else {
            throw Self.error(
                status: status, json: answer.flatMap { (try? JSONSerialization.jsonObject(with: Data($0.readableBytesView))) as? [String: Any] })
        }
        guard let generated = try? JSONObjectReader.decode(Generated.self, from: Array(answer.readableBytesView)) else {
            throw .failed("the local worker's answer could not be read")
        }
        var images: [GeneratedImage] = []
        for image in generated.images {
            // Kept as the worker's base64: the member's answer carries it as it came.
            guard let checked = CheckedBase64(image.data) else {
                throw .failed("the local worker's answer could not be read")
            }
            images.append(GeneratedImage(base64: checked, format: image.format == "png" ? .png : .jpeg))
        }
        let seconds = generated.generation_time ?? 0
        return GenerationResult(images: images, seed: generated.seed, generationTime: Duration.reported(seconds: seconds) ?? .zero)
    }

    /// The largest answer read: four large images in base64, with room to spare (the worker is
    /// asked for JPEG). A worker is the team's code, but a broken or taken-over one must not make
    /// the gateway hold more.
    static let maxAnswerBytes = 64 << 20
    /// The largest error answer read: a worker's error is a code and a sentence.
    static let maxErrorBytes = 64 << 10

    /// The answer of `POST /generate`: the images in base64, read without a byte-by-byte scan.
    private struct Generated: Decodable {
        struct Image: Decodable {
            let data: LiftedText
            let format: String?
        }

        let images: [Image]
        let seed: UInt64
        let generation_time: Double?
    }

    /// Asks the worker to stop the generation with `id` at its next step. Best effort: a worker that
    /// has finished it, or does not know the call, answers and runs on; the generation's own answer
    /// says how it ended.
    func cancel(_ id: String, at base: String, token: String?, timeout: Duration) async {
        var call = HTTPClientRequest(url: base + "/cancel")
        call.method = .POST
        call.headers.add(name: "Content-Type", value: "application/json")
        if let token { call.headers.add(name: "Authorization", value: "Bearer \(token)") }
        guard let body = try? JSONSerialization.data(withJSONObject: ["request_id": id]) else { return }
        call.body = .bytes(ByteBuffer(bytes: Array(body)))
        // The deadline covers the answer's body too (the client's own ends with its head).
        _ = try? await withinDeadline(.now + timeout) { [http, call] in
            let response = try await http.execute(call, timeout: .milliseconds(timeout.wholeMilliseconds))
            _ = try await response.body.collect(upTo: 1 << 16)
        }
    }

    /// The worker's typed errors, as the gateway answers them.
    static func error(status: Int, json: [String: Any]?) -> InferenceError {
        let error = json?["error"] as? [String: Any]
        let message = error?["message"] as? String ?? "the local worker failed (HTTP \(status))"
        switch error?["code"] as? String {
        case "busy": return .busy(retryAfter: .seconds(1))
        // The worker unloaded idle weights and serves on: a retry may fit.
        case "out_of_memory": return .busy(retryAfter: .seconds(10))
        case "unsupported": return .unsupported(message)
        // Stopped between steps at its job's cancel: the message says after how many steps.
        case "cancelled": return .failed(message)
        case "unauthorized": return .failed("the local worker refused the gateway's token (see local.remote_worker_token_env)")
        default: return .failed(message)
        }
    }

    /// The flat JSON of `POST /generate`; fields without a value are left out. The seed travels as
    /// a decimal string: every 64-bit value survives, whatever the JSON library does with large
    /// numbers. The input image's base64 is spliced in, not escaped byte by byte.
    static func body(of request: GenerationRequest, id: String) -> [UInt8] {
        var splices = SplicedJSON()
        let body = GenerateBody(
            model: request.model, family: request.family.rawValue, task: request.task.rawValue, prompt: request.prompt,
            width: request.width, height: request.height, samples: request.samples, steps: request.steps,
            guidance_scale: request.guidanceScale, seed: String(request.seed), output_format: "jpeg",
            negative_prompt: request.negativePrompt, image: request.image.map { splices.placeholder(for: $0.base64Text.bytes) },
            strength: request.strength, scheduler: request.scheduler, sampler: request.sampler, style: request.options.style,
            refiner: request.options.refiner, high_noise_fraction: request.options.highNoiseFraction,
            base_model: request.options.baseModel,
            // The key id, never its secret: a batching worker takes turns across members.
            member: request.requester, request_id: id)
        return splices.encode(body)
    }

    private struct GenerateBody: Encodable {
        let model: String
        let family: String
        let task: String
        let prompt: String
        let width: Int
        let height: Int
        let samples: Int
        let steps: Int
        let guidance_scale: Double
        let seed: String
        let output_format: String
        let negative_prompt: String?
        let image: String?
        let strength: Double?
        let scheduler: String?
        let sampler: String?
        let style: String?
        let refiner: Bool?
        let high_noise_fraction: Double?
        let base_model: String?
        let member: String?
        let request_id: String
    }
}
