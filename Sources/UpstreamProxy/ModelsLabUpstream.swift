import Foundation
import GenerationCore
import GuardedHTTP
import NIOCore

/// The StableDiffusionAPI / ModelsLab v3 API as a client speaks it: the team's key in the body,
/// `img2img` or `text2img` by the request's task, every application-level answer an HTTP 200
/// whose `status` tells success, `processing`, `error` or `failed`. A `processing` job is polled
/// on the upstream's own `fetch` until it ends or the deadline passes; the images are then
/// downloaded from the URLs in `output`.
///
/// Only the first call of a generation may find the upstream unreachable: once the upstream has
/// accepted it (answered at all), the paid work has begun, so a poll or a download that cannot
/// connect is the member's failure (502) and never lets the route send the request elsewhere.
struct ModelsLabUpstream {
    let upstream: Upstream
    let client: UpstreamClient
    /// For output URLs on any other host than the upstream's own.
    let outputs: GuardedFetcher

    func generate(_ request: GenerationRequest, deadline: NIODeadline) async throws(UpstreamFailure) -> GenerationResult {
        let start = ContinuousClock.now
        let endpoint = request.task == .imageToImage ? "img2img" : "text2img"
        let accepted = try await call("/api/v3/" + endpoint, body: try body(for: request), deadline: deadline)
        do {
            return try await finish(request, accepted, started: start, deadline: deadline)
        } catch {
            throw error.afterAcceptance
        }
    }

    /// Polls a generation the upstream accepted until it ends, and downloads its images.
    private func finish(
        _ request: GenerationRequest, _ accepted: Answer, started start: ContinuousClock.Instant, deadline: NIODeadline
    ) async throws(UpstreamFailure) -> GenerationResult {
        var answer = accepted
        while answer.status == "processing" {
            // The id goes into a path: only plain ones are taken.
            guard let id = answer.id, id.description.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw .answered(UpstreamFailure.unreadable)
            }
            // The upstream's estimate, within bounds: neither hammering it nor sleeping past the deadline.
            let wait = TimeAmount.milliseconds(Int64(min(max(answer.eta ?? 1, 0.05), 5) * 1000))
            guard NIODeadline.now() + wait < deadline else { throw .answered(.timedOut) }
            try? await Task.sleep(for: .nanoseconds(wait.nanoseconds))
            // Polled on the configured base URL, never on the answer's `fetch_result`: the key
            // goes only where the team sent it.
            answer = try await call("/api/v3/fetch/\(id)", body: SplicedJSON().encode(["key": upstream.key.secret]), deadline: deadline)
        }
        guard answer.status == "success", let urls = answer.output, !urls.isEmpty else {
            throw .answered(Self.refusal(answer))
        }
        // Only the images asked for are fetched: an answer that lists more (a fault, or an
        // upstream that means harm) must not make the gateway download and hold every one.
        var images: [GeneratedImage] = []
        for url in urls.prefix(request.samples) { images.append(try await download(url, deadline: deadline)) }
        return GenerationResult(
            images: images,
            seed: answer.meta?.seed ?? request.seed,
            generationTime: answer.generationTime.flatMap(Duration.reported(seconds:)) ?? .now - start,
            upstream: UpstreamReport(name: upstream.name)
        )
    }

    /// An output image. One on the upstream's own origin, as configured, comes through its pool;
    /// any other (its CDN, or wherever a compromised upstream points) only under the address rules
    /// that member-given URLs follow, so an answer cannot make the gateway fetch a private address.
    private func download(_ text: String, deadline: NIODeadline) async throws(UpstreamFailure) -> GeneratedImage {
        let bytes: [UInt8]
        if let url = URL(string: text), !Self.sameOrigin(url, URL(string: upstream.baseURL)) {
            var fetcher = outputs
            fetcher.timeout = min(fetcher.timeout, .nanoseconds(max(0, (deadline - .now()).nanoseconds)))
            do {
                bytes = try await fetcher.get(url, maxBytes: UpstreamClient.maxBodyBytes)
            } catch {
                throw .answered(.failed(error.message))
            }
        } else {
            let download = try await client.send("GET", text, deadline: deadline)
            guard download.status == 200 else { throw .answered(UpstreamFailure.unreadable) }
            bytes = download.body
        }
        guard let info = ImageInspector.inspect(bytes) else { throw .answered(UpstreamFailure.unreadable) }
        return GeneratedImage(bytes: bytes, format: info.format)
    }

    static func sameOrigin(_ url: URL, _ base: URL?) -> Bool {
        guard let base, let scheme = url.scheme?.lowercased(), scheme == base.scheme?.lowercased(),
            let host = url.host?.lowercased(), host == base.host?.lowercased()
        else { return false }
        let defaultPort = scheme == "https" ? 443 : 80
        return (url.port ?? defaultPort) == (base.port ?? defaultPort)
    }

    private func call(_ path: String, body: [UInt8], deadline: NIODeadline) async throws(UpstreamFailure) -> Answer {
        let response = try await client.send(
            "POST", upstream.baseURL + path, headers: [("Content-Type", "application/json")],
            body: ByteBuffer(bytes: body), deadline: deadline)
        guard response.status == 200 else {
            // The newer ModelsLab API answers with real statuses (401, 402, 429); they mean the same.
            throw .answered(UpstreamFailure.status(response.status, retryAfter: response.header("retry-after"), message: nil))
        }
        // Through the reader that bounds how many values are built: an answer of millions of small
        // ones would otherwise cost some 15 times its size while it is decoded.
        guard let answer = try? JSONObjectReader.decode(Answer.self, from: response.body) else {
            throw .answered(UpstreamFailure.unreadable)
        }
        return answer
    }

    /// What an `error` or `failed` answer means for the member, from its message (the v3 API says
    /// everything with HTTP 200).
    static func refusal(_ answer: Answer) -> InferenceError {
        let message = answer.message ?? answer.messege ?? ""
        let lowered = message.lowercased()
        if answer.status == "error" {
            if lowered.contains("api key") { return UpstreamFailure.rejectedKey }
            if lowered.contains("credit") { return UpstreamFailure.outOfCredits }
            if lowered.contains("rate limit") {
                let seconds = answer.retry_after.flatMap(Duration.reported(seconds:)).map { String($0.components.seconds) }
                return UpstreamFailure.rateLimited(retryAfter: seconds ?? "30")
            }
        }
        guard answer.status == "error" || answer.status == "failed" else { return UpstreamFailure.unreadable }
        return .failed("the upstream failed" + (message.isEmpty ? "" : ": \(message.prefix(300))"))
    }

    /// The request in v3 field names: numbers as numbers, switches as `"yes"`/`"no"`, the input
    /// image as raw base64 (spliced in, not escaped by the encoder).
    func body(for request: GenerationRequest) throws(UpstreamFailure) -> [UInt8] {
        var splices = SplicedJSON()
        let fields = Fields(
            key: upstream.key.secret, prompt: request.prompt, negative_prompt: request.negativePrompt,
            init_image: request.image.map { splices.placeholder(for: $0.base64Text.bytes) }, width: request.width,
            height: request.height,
            samples: request.samples, num_inference_steps: request.steps, guidance_scale: request.guidanceScale,
            strength: request.strength, seed: request.seed, scheduler: try Self.scheduler(for: request),
            safety_checker: "no", enhance_prompt: "no", base64: "no"
        )
        return splices.encode(fields)
    }

    /// ModelsLab's name for the request's scheduler (SD3: its sampler, ComfyUI's name; SD3's own
    /// schedule has no ModelsLab field). One ModelsLab cannot run is refused before anything is
    /// sent (422, nothing charged), never swapped for the upstream's default.
    static func scheduler(for request: GenerationRequest) throws(UpstreamFailure) -> String? {
        let (name, table) =
            request.family == .sd3
            ? (request.sampler, ModelsLabSchedulerNames.samplers) : (request.scheduler, ModelsLabSchedulerNames.schedulers)
        guard let name else { return nil }
        guard let modelsLab = ModelsLabSchedulerNames.modelsLabName(for: name, in: table) else {
            let runnable = table.values.sorted().joined(separator: ", ")
            throw .answered(
                .unsupported(
                    "\(request.family == .sd3 ? "sampler" : "scheduler") '\(name.prefix(100))' does not run on this model's upstream; it runs \(runnable)"
                ))
        }
        return modelsLab
    }

    private struct Fields: Encodable {
        let key: String
        let prompt: String
        let negative_prompt: String?
        let init_image: String?
        let width: Int
        let height: Int
        let samples: Int
        let num_inference_steps: Int
        let guidance_scale: Double
        let strength: Double?
        let seed: UInt64
        let scheduler: String?
        let safety_checker: String
        let enhance_prompt: String
        let base64: String
    }

    struct Answer: Decodable {
        let status: String
        let id: JobID?
        let eta: Double?
        let output: [String]?
        let generationTime: Double?
        let meta: Meta?
        /// A validation error's `message` is an object; only a text message is read.
        let message: String?
        let messege: String?
        let retry_after: Double?

        struct Meta: Decodable {
            let seed: UInt64?
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            status = try container.decode(String.self, forKey: .status)
            id = try? container.decode(JobID.self, forKey: .id)
            eta = try? container.decode(Double.self, forKey: .eta)
            output = try? container.decode([String].self, forKey: .output)
            generationTime = try? container.decode(Double.self, forKey: .generationTime)
            meta = try? container.decode(Meta.self, forKey: .meta)
            message = try? container.decode(String.self, forKey: .message)
            messege = try? container.decode(String.self, forKey: .messege)
            retry_after = try? container.decode(Double.self, forKey: .retry_after)
        }

        private enum CodingKeys: String, CodingKey {
            case status, id, eta, output, generationTime, meta, message, messege, retry_after
        }
    }

    /// A job id: a number on the legacy API, a string elsewhere.
    struct JobID: Decodable, CustomStringConvertible {
        let description: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int64.self) {
                description = String(number)
            } else {
                description = try container.decode(String.self)
            }
        }
    }
}
