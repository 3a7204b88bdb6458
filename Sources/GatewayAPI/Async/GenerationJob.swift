import Foundation
public import GenerationCore
public import Jobs
public import Ledger

/// A generation that runs in the background (a ModelsLab v3 call that outlasts its wait, a
/// Segmind v2 request), as it is stored with its job: the request, and the names its outputs will
/// have, chosen up front so that an answer can point at them before they exist.
public struct GenerationJobPayload: Codable, Sendable {
    public var request: StoredRequest
    /// The output store's file names, one per sample.
    public var files: [String]
    /// ModelsLab `base64: "yes"`: the files hold base64 text.
    public var base64: Bool
    public var webhook: String?
    public var trackID: String?
    /// The gateway's address as the client reached it, for the URLs of a webhook's body.
    public var baseURL: String?
    /// What the answer's `meta` reports, as the dialect rendered it.
    public var meta: [String: JSONValue]
    /// What the images cost by how many are delivered. (Absent from jobs queued before it was
    /// kept: they are charged what was held.)
    public var price: RequestPrice?

    public init(request: GenerationRequest, files: [String], base64: Bool, webhook: String? = nil, trackID: String? = nil,
                baseURL: String? = nil, meta: [String: JSONValue], price: RequestPrice? = nil) {
        self.price = price
        self.request = StoredRequest(request)
        self.files = files
        self.base64 = base64
        self.webhook = webhook
        self.trackID = trackID
        self.baseURL = baseURL
        self.meta = meta
    }

    public func encoded() -> [UInt8] { Array((try? JSONEncoder().encode(self)) ?? Data()) }

    public static func decode(_ bytes: [UInt8]) -> GenerationJobPayload? { try? JSONDecoder().decode(Self.self, from: Data(bytes)) }
}

/// What a finished generation job produced, stored with it.
public struct GenerationJobResult: Codable, Sendable {
    public var seed: UInt64
    public var generationSeconds: Double
    /// Which backend served the job and what an upstream said it cost, for the job's usage event.
    /// (Absent from results stored before it was kept.)
    public var backend: String?
    public var upstreamCost: String?
    public var upstreamRemainingCredits: String?
    /// How many images the backend delivered (the first ones of the payload's files), and what
    /// they cost. (Absent from results stored before they were kept: every file, the held price.)
    public var delivered: Int?
    public var chargedMicroCredits: Int64?

    /// The files that exist: those of the images delivered.
    public func delivered(of payload: GenerationJobPayload) -> [String] {
        delivered.map { Array(payload.files.prefix($0)) } ?? payload.files
    }

    var upstream: UpstreamReport? {
        backend.map { UpstreamReport(name: $0, cost: upstreamCost, remainingCredits: upstreamRemainingCredits) }
    }

    public func encoded() -> [UInt8] { Array((try? JSONEncoder().encode(self)) ?? Data()) }

    public static func decode(_ bytes: [UInt8]?) -> GenerationJobResult? {
        bytes.flatMap { try? JSONDecoder().decode(Self.self, from: Data($0)) }
    }
}

/// A `GenerationRequest` as JSON: every field, the input image as base64.
public struct StoredRequest: Codable, Sendable {
    var model: String, task: String, family: String, prompt: String, negativePrompt: String?
    var image: Data?
    var width: Int, height: Int, samples: Int, steps: Int, guidanceScale: Double, strength: Double?
    var seed: UInt64, scheduler: String?, sampler: String?
    var style: String?, refiner: Bool?, highNoiseFraction: Double?, baseModel: String?
    var requester: String?

    init(_ request: GenerationRequest) {
        (model, task, family, prompt, negativePrompt) = (request.model, request.task.rawValue, request.family.rawValue, request.prompt, request.negativePrompt)
        image = request.image.map { Data($0.bytes) }
        (width, height, samples, steps, guidanceScale, strength) = (request.width, request.height, request.samples, request.steps,
                                                                   request.guidanceScale, request.strength)
        (seed, scheduler, sampler) = (request.seed, request.scheduler, request.sampler)
        (style, refiner, highNoiseFraction, baseModel) = (request.options.style, request.options.refiner, request.options.highNoiseFraction,
                                                          request.options.baseModel)
        requester = request.requester
    }

    var generationRequest: GenerationRequest? {
        guard let task = GenerationTask(rawValue: task), let family = ModelFamily(rawValue: family) else { return nil }
        let input = image.flatMap { data in ImageInspector.inspect(Array(data)).map { InputImage(bytes: Array(data), info: $0) } }
        var request = GenerationRequest(
            model: model, task: task, family: family, prompt: prompt, negativePrompt: negativePrompt, image: input, width: width,
            height: height, samples: samples, steps: steps, guidanceScale: guidanceScale, strength: strength, seed: seed,
            scheduler: scheduler, sampler: sampler,
            options: GenerationOptions(style: style, refiner: refiner, highNoiseFraction: highNoiseFraction, baseModel: baseModel))
        request.requester = requester
        return request
    }
}

/// Runs generation jobs for the job runner: generates, writes the outputs under the names the
/// payload chose, settles the job's credits once its end is recorded, and queues its webhook.
public struct GenerationJobExecutor: Sendable {
    public let backend: any InferenceBackend
    public let outputs: OutputStore
    public let gate: any AccessGate
    public let completions: JobCompletions
    /// Where the webhooks of finished jobs go out; nil: they are not sent.
    public let webhooks: WebhookDispatcher?

    public init(backend: any InferenceBackend, outputs: OutputStore, gate: any AccessGate, completions: JobCompletions,
                webhooks: WebhookDispatcher? = nil) {
        self.backend = backend
        self.outputs = outputs
        self.gate = gate
        self.completions = completions
        self.webhooks = webhooks
    }

    public func execute(_ job: JobRecord) async -> JobRunner.Outcome {
        guard let payload = GenerationJobPayload.decode(job.payload), let request = payload.request.generationRequest else {
            return .failed("the stored request could not be read")
        }
        do {
            let result = try await gate.generate(request, on: backend, holding: CreditHold(id: job.hold.rawValue))
            // Only the images delivered become files, and only they are charged.
            let images = Array(result.images.prefix(payload.files.count))
            guard !images.isEmpty else { return .failed("the backend returned no images") }
            for (image, name) in zip(images, payload.files) {
                let bytes = payload.base64 ? Array(Data(image.bytes).base64EncodedString().utf8) : image.bytes
                try outputs.save(bytes, named: name)
            }
            let charge = payload.price.map { min($0.cost(images: images.count), job.cost) } ?? job.cost
            let seconds = Double(result.generationTime.components.seconds) + Double(result.generationTime.components.attoseconds) / 1e18
            return .completed(GenerationJobResult(seed: result.seed, generationSeconds: seconds, backend: result.upstream?.name,
                                                  upstreamCost: result.upstream?.cost,
                                                  upstreamRemainingCredits: result.upstream?.remainingCredits,
                                                  delivered: images.count, chargedMicroCredits: charge.microCredits).encoded())
        } catch let error as InferenceError {
            return .failed(error.description)
        } catch {
            return .failed("the images could not be stored")
        }
    }

    /// Charges a completed job's hold for the images it delivered, with its usage event in the
    /// same step; releases a failed one's, and records its usage.
    public func settle(_ job: JobRecord, _ outcome: JobRunner.Outcome) async {
        // From queued to answered: what the client waited. (The record is the claimed one: it
        // does not know its own end.)
        let duration = Duration.milliseconds(max(0, SQLiteLedger.systemNow() - job.createdAt))
        let hold = CreditHold(id: job.hold.rawValue)
        switch outcome {
        case .completed(let answer):
            let result = GenerationJobResult.decode(answer)
            let charge = result?.chargedMicroCredits.map(Credits.init(microCredits:)) ?? job.cost
            let usage = GenerationUsage(keyID: job.keyID, model: job.model, status: 200, cost: charge, held: job.cost, duration: duration,
                                        requestID: job.id, upstream: result?.upstream)
            _ = await gate.settle(hold, charge: charge, recording: usage)
        case .failed(let message):
            _ = await gate.release(hold, reason: message)
            await gate.recordUsage(GenerationUsage(keyID: job.keyID, model: job.model, status: 500, cost: .zero, held: job.cost,
                                                   duration: duration, requestID: job.id))
        }
        completions.finished(job.id)
        await queueWebhook(job, outcome)
    }

    /// A ModelsLab job with a `webhook` gets its success or failure body POSTed there (the only
    /// API family with per-request webhooks). A crash between the job's end and this leaves it unsent.
    private func queueWebhook(_ job: JobRecord, _ outcome: JobRunner.Outcome) async {
        guard let webhooks, let payload = GenerationJobPayload.decode(job.payload), let url = payload.webhook else { return }
        let body = ModelsLabAnswer.webhookBody(job.id, outcome, payload: payload)
        await webhooks.enqueue(NewWebhook(keyID: job.keyID, jobID: job.id, url: url, body: body))
    }
}
