import Foundation
public import GenerationCore

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
    /// The client knows the job by its integer public id (ModelsLab's answers), not its UUID: its
    /// usage event names it so, for the operator who reconciles a client's id with the report.
    public var knownByPublicID: Bool?

    public init(
        request: GenerationRequest, files: [String], base64: Bool, webhook: String? = nil, trackID: String? = nil,
        baseURL: String? = nil, meta: [String: JSONValue], price: RequestPrice? = nil, knownByPublicID: Bool = false
    ) {
        self.price = price
        self.knownByPublicID = knownByPublicID
        self.request = StoredRequest(request)
        self.files = files
        self.base64 = base64
        self.webhook = webhook
        self.trackID = trackID
        self.baseURL = baseURL
        self.meta = meta
    }

    public func encoded() -> [UInt8] { Array((try? JSONEncoder().encode(self)) ?? Data()) }

    /// The payload encoded without its input image, and the image: a job keeps them apart
    /// (`JobRecord.input`), so that reading the job back costs the same whatever the image's size.
    func encodedApart() -> (payload: [UInt8], input: [UInt8]?) {
        var rest = self
        rest.request.image = nil
        return (rest.encoded(), request.image.map { Array($0) })
    }

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

/// A `GenerationRequest` as JSON: every field, and the input image as base64 in jobs queued before
/// it was kept apart (`encodedApart`).
public struct StoredRequest: Codable, Sendable {
    var model: String, task: String, family: String, prompt: String, negativePrompt: String?
    var image: Data?
    var width: Int, height: Int, samples: Int, steps: Int, guidanceScale: Double, strength: Double?
    var seed: UInt64, scheduler: String?, sampler: String?
    var style: String?, refiner: Bool?, highNoiseFraction: Double?, baseModel: String?
    var requester: String?

    init(_ request: GenerationRequest) {
        (model, task, family, prompt, negativePrompt) = (
            request.model, request.task.rawValue, request.family.rawValue, request.prompt, request.negativePrompt
        )
        image = request.image.map { Data($0.bytes) }
        (width, height, samples, steps, guidanceScale, strength) = (
            request.width, request.height, request.samples, request.steps,
            request.guidanceScale, request.strength
        )
        (seed, scheduler, sampler) = (request.seed, request.scheduler, request.sampler)
        (style, refiner, highNoiseFraction, baseModel) = (
            request.options.style, request.options.refiner, request.options.highNoiseFraction,
            request.options.baseModel
        )
        requester = request.requester
    }

    /// The request, with `input`: the image kept apart from the payload, or the payload's own.
    func generationRequest(input stored: [UInt8]?) -> GenerationRequest? {
        guard let task = GenerationTask(rawValue: task), let family = ModelFamily(rawValue: family) else { return nil }
        let bytes = stored ?? image.map { Array($0) }
        let input = bytes.flatMap { bytes in ImageInspector.inspect(bytes).map { InputImage(bytes: bytes, info: $0) } }
        // Image-to-image without its image is no request: run, it would be sent as text-to-image
        // (a gateway of an older version claiming a job whose image is stored apart sees none).
        guard task == .textToImage || input != nil else { return nil }
        var request = GenerationRequest(
            model: model, task: task, family: family, prompt: prompt, negativePrompt: negativePrompt, image: input, width: width,
            height: height, samples: samples, steps: steps, guidanceScale: guidanceScale, strength: strength, seed: seed,
            scheduler: scheduler, sampler: sampler,
            options: GenerationOptions(style: style, refiner: refiner, highNoiseFraction: highNoiseFraction, baseModel: baseModel))
        request.requester = requester
        return request
    }
}
