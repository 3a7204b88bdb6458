import Foundation
public import GenerationCore
public import HTTPServer
public import Jobs
public import Ledger

/// The StableDiffusionAPI / ModelsLab v3 API: `POST /api/v3/img2img`, `/api/v3/text2img`, and
/// `/api/v3/fetch/{id}` or `/api/v3/fetch` (`request_id` in the body), as Part A items 11-16 fix it.
///
/// The key travels in the body; every answer is HTTP 200 with a `status`. A generation is a job:
/// the call waits up to `wait` for it and answers `success`, or else `processing` with where to
/// fetch it, and the job completes in the background.
public struct ModelsLabDialect: Sendable {
    public let catalog: ModelCatalog
    public let gate: any AccessGate
    public let images: ImageLoader
    public let rateLimiter: RateLimiter
    public let jobs: any JobStore
    public let completions: JobCompletions
    /// Tells the job runner that a job was queued.
    public let wake: @Sendable () -> Void
    /// The gateway's address as clients reach it (`https://gateway.example`); nil: from the
    /// request's Host header, with `hostScheme` (`https` when the gateway serves TLS itself).
    public let publicBaseURL: String?
    public let hostScheme: String
    /// How long a call waits for its job before answering `processing`.
    public let wait: Duration
    public let maxBodyBytes: Int
    let randomSeed: @Sendable () -> UInt64

    public init(catalog: ModelCatalog, gate: any AccessGate, images: ImageLoader, rateLimiter: RateLimiter = RateLimiter(),
                jobs: any JobStore, completions: JobCompletions, wake: @escaping @Sendable () -> Void, publicBaseURL: String? = nil,
                hostScheme: String = "http", wait: Duration = .seconds(20), maxBodyBytes: Int = 32 << 20,
                randomSeed: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...4_294_967_295) }) {
        self.catalog = catalog
        self.gate = gate
        self.images = images
        self.rateLimiter = rateLimiter
        self.jobs = jobs
        self.completions = completions
        self.wake = wake
        self.publicBaseURL = publicBaseURL
        self.hostScheme = hostScheme
        self.wait = wait
        self.maxBodyBytes = maxBodyBytes
        self.randomSeed = randomSeed
    }

    public func register(on router: inout Router) {
        for endpoint in catalog.modelsLab.keys.sorted() {
            router.post("/api/v3/\(endpoint)", maxBodyBytes: maxBodyBytes) { request, _ in await generate(request, endpoint: endpoint) }
        }
        router.post("/api/v3/fetch/{id}", maxBodyBytes: 64 << 10) { request, parameters in await fetch(request, id: parameters["id"]) }
        router.post("/api/v3/fetch", maxBodyBytes: 64 << 10) { request, _ in await fetch(request, id: nil) }
    }

    // MARK: Generation

    func generate(_ request: HTTPRequest, endpoint: String) async -> HTTPResponse {
        guard let spec = catalog.modelsLab[endpoint] else { return ModelsLabAnswer.error("Unknown endpoint") }
        guard let body = RequestBody.fields(request.body, contentType: request.headers["Content-Type"]) else {
            return ModelsLabAnswer.error("The request body must be a JSON object or a form")
        }
        guard let apiKey = body["key"]?.text, let key = await gate.authenticate(apiKey: apiKey) else {
            return ModelsLabAnswer.error(ModelsLabAnswer.invalidKey)
        }
        var response = await generate(body, spec: spec, key: key, baseURL: baseURL(for: request))
        if let remaining = await gate.remaining(for: key) { response.headers.set("x-remaining-credits", remaining.description) }
        return response
    }

    private func generate(_ body: [String: JSONValue], spec: ModelSpec, key: AuthenticatedKey, baseURL: String) async -> HTTPResponse {
        if let limit = key.rateLimitPerMinute, case .limited(let wait) = rateLimiter.check(key: key.id, perMinute: limit) {
            let seconds = Int(wait.rounded(.up))
            return ModelsLabAnswer.error("Rate limit exceeded", extra: ["retry_after": .integer(Int64(seconds))], headers: ["Retry-After": String(seconds)])
        }
        guard key.allows(model: spec.slug) else { return ModelsLabAnswer.error("This API key may not use model '\(spec.slug)'") }
        let fields: ValidatedFields
        switch RequestValidator.validate(body, for: spec) {
        case .success(let valid): fields = valid
        case .failure(let failure): return ModelsLabAnswer.invalid(failure.problems)
        }
        // Part A item 16: no NSFW checker is configured, so a request that asks for one is refused
        // rather than served unchecked.
        if FieldCoercion.flag(body["safety_checker"]) == true {
            return ModelsLabAnswer.error("safety_checker is not available on this gateway: no NSFW checker is configured; send \"no\"")
        }
        let webhook = body["webhook"]?.text.flatMap { $0.isEmpty ? nil : $0 }
        if let webhook, URL(string: webhook).map({ ["http", "https"].contains($0.scheme?.lowercased() ?? "") && $0.host != nil }) != true {
            return ModelsLabAnswer.error("webhook: expected an http(s) URL")
        }
        var image: InputImage?
        if let field = spec.field(.image), let source = fields.string(.image) {
            do {
                image = try await images.load(source, maxSize: spec.input.maxSize)
            } catch {
                return ModelsLabAnswer.error("Unable to fetch image from provided URL: \(field.name): \(error.reason)")
            }
        }
        var generation = GenerationRequestBuilder.build(fields, image: image, randomSeed: randomSeed())
        generation.requester = key.id
        let defaultSteps = spec.field(.steps)?.defaultValue?.asDouble.map { Int($0) } ?? generation.steps
        let cost = spec.price.cost(samples: generation.samples, steps: generation.steps, defaultSteps: defaultSteps)
        let hold: CreditHold
        switch await gate.reserve(cost, for: key) {
        case .held(let held, _): hold = held
        case .insufficient: return ModelsLabAnswer.error(ModelsLabAnswer.insufficientCredits)
        case .unavailable: return ModelsLabAnswer.error("Credits cannot be checked right now; try again later")
        }
        let base64 = fields.boolean(.base64) ?? false
        let payload = GenerationJobPayload(
            request: generation, files: (0..<generation.samples).map { _ in OutputStore.newName(base64 ? .base64 : .jpeg) }, base64: base64,
            webhook: webhook, trackID: body["track_id"]?.text, meta: Self.meta(generation, body: body))
        let job: JobRecord
        do {
            job = try await jobs.enqueueJob(NewJob(keyID: key.id, dialect: "modelslab", model: spec.slug, payload: payload.encoded(),
                                                   hold: HoldID(hold.id), cost: cost))
        } catch {
            _ = await gate.release(hold, reason: "the job could not be queued")
            return ModelsLabAnswer.error("The request could not be queued; try again later")
        }
        wake()
        return await answer(waitingFor: job.id, payload: payload, baseURL: baseURL, upTo: wait)
    }

    /// Waits up to `timeout` for the job to end, then answers with its state. A job that ends on
    /// this replica wakes the wait; one that ends elsewhere is seen by looking again every second.
    private func answer(waitingFor id: String, payload: GenerationJobPayload, baseURL: String, upTo timeout: Duration) async -> HTTPResponse {
        let deadline = ContinuousClock.now + timeout
        while true {
            guard let job = try? await jobs.job(id: id) else { return ModelsLabAnswer.error("The request could not be read; fetch it later") }
            let left = deadline - .now
            if job.state == .completed || job.state == .failed || left <= .zero || Task.isCancelled {
                let eta = max(1, Double(payload.request.steps) / 10)
                return ModelsLabAnswer.job(job, payload: payload, baseURL: baseURL, etaSeconds: eta)
            }
            await completions.wait(for: id, upTo: min(left, .seconds(1)))
        }
    }

    /// What `meta` reports: the parameters the generation actually uses.
    static func meta(_ request: GenerationRequest, body: [String: JSONValue]) -> [String: JSONValue] {
        var meta: [String: JSONValue] = [
            "prompt": .string(request.prompt), "negative_prompt": .string(request.negativePrompt ?? ""),
            "W": .integer(Int64(request.width)), "H": .integer(Int64(request.height)), "steps": .integer(Int64(request.steps)),
            "guidance_scale": .number(request.guidanceScale), "n_samples": .integer(Int64(request.samples)),
            "seed": .string(String(request.seed)), "model": .string(request.model), "safety_checker": .string("no"),
            // Accepted for compatibility; the prompt is used as sent (Part A item 16).
            "enhance_prompt": .string("no"),
        ]
        if let strength = request.strength, request.task == .imageToImage { meta["strength"] = .number(strength) }
        if let source = body["init_image"]?.text, source.hasPrefix("http") { meta["init_image"] = .string(source) }
        return meta
    }

    // MARK: Fetch

    func fetch(_ request: HTTPRequest, id pathID: String?) async -> HTTPResponse {
        guard let body = RequestBody.fields(request.body, contentType: request.headers["Content-Type"]) else {
            return ModelsLabAnswer.error("The request body must be a JSON object or a form")
        }
        guard let apiKey = body["key"]?.text, let key = await gate.authenticate(apiKey: apiKey) else {
            return ModelsLabAnswer.error(ModelsLabAnswer.invalidKey)
        }
        guard let id = pathID ?? body["request_id"]?.text else { return ModelsLabAnswer.error("request_id: is required") }
        // Another key's job, or none: the same answer, so ids cannot be probed.
        guard let job = try? await jobs.job(id: id), job.keyID == key.id, job.dialect == "modelslab",
              let payload = GenerationJobPayload.decode(job.payload) else {
            return ModelsLabAnswer.error("Request not found")
        }
        return ModelsLabAnswer.job(job, payload: payload, baseURL: baseURL(for: request), etaSeconds: 1)
    }

    private func baseURL(for request: HTTPRequest) -> String {
        if let publicBaseURL { return publicBaseURL.hasSuffix("/") ? String(publicBaseURL.dropLast()) : publicBaseURL }
        return hostScheme + "://" + (request.headers["Host"] ?? "localhost")
    }
}
