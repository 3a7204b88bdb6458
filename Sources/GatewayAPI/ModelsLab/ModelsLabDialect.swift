import Foundation
import GenerationCore
public import HTTPServer
import Jobs
import Ledger

/// The StableDiffusionAPI / ModelsLab v3 API: `POST /api/v3/img2img`, `/api/v3/text2img`, and
/// `/api/v3/fetch/{id}` or `/api/v3/fetch` (`request_id` in the body).
///
/// The key travels in the body; every answer is HTTP 200 with a `status`. A generation is a job:
/// the call waits up to `wait` for it and answers `success`, or else `processing` with where to
/// fetch it, and the job completes in the background.
public struct ModelsLabDialect: Sendable {
    public let catalog: ModelCatalog
    public let gate: any AccessGate
    public let images: ImageLoader
    public let rateLimiter: RateLimiter
    public let jobs: JobQueue
    /// Checks `webhook` URLs against the address rules before a job is queued.
    public let webhooks: WebhookSender
    /// How long a call waits for its job before answering `processing`.
    public let wait: Duration
    public let maxBodyBytes: Int
    let randomSeed: @Sendable () -> UInt64

    public init(catalog: ModelCatalog, gate: any AccessGate, images: ImageLoader, rateLimiter: RateLimiter = RateLimiter(),
                jobs: JobQueue, webhooks: WebhookSender = WebhookSender(), wait: Duration = .seconds(20), maxBodyBytes: Int = 32 << 20,
                randomSeed: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...4_294_967_295) }) {
        self.catalog = catalog
        self.gate = gate
        self.images = images
        self.rateLimiter = rateLimiter
        self.jobs = jobs
        self.webhooks = webhooks
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
        let start = ContinuousClock.now
        var answer = await generate(body, spec: spec, key: key, baseURL: jobs.baseURL(for: request))
        if let status = answer.refusedAs {
            await gate.recordUsage(GenerationUsage(keyID: key.id, model: spec.slug, status: status, cost: .zero, held: .zero, duration: .now - start,
                                                   requestID: request.headers["x-request-id"] ?? ""))
        }
        if let remaining = await gate.remaining(for: key) { answer.response.headers.set("x-remaining-credits", remaining.description) }
        return answer.response
    }

    /// A v3 answer (always HTTP 200) and, for a refusal, the HTTP status it stands for in the usage
    /// report, as the Segmind dialect would answer it; a queued job records its own usage.
    private struct Answer {
        var response: HTTPResponse
        var refusedAs: Int?
    }

    private func generate(_ body: [String: JSONValue], spec: ModelSpec, key: AuthenticatedKey, baseURL: String) async -> Answer {
        if let limit = key.rateLimitPerMinute, case .limited(let wait) = rateLimiter.check(key: key.id, perMinute: limit) {
            let seconds = Int(wait.rounded(.up))
            return Answer(response: ModelsLabAnswer.error("Rate limit exceeded", extra: ["retry_after": .integer(Int64(seconds))],
                                                          headers: ["Retry-After": String(seconds)]), refusedAs: 429)
        }
        guard key.allows(model: spec.slug) else {
            return Answer(response: ModelsLabAnswer.error("This API key may not use model '\(spec.slug)'"), refusedAs: 403)
        }
        let fields: ValidatedFields
        switch RequestValidator.validate(body, for: spec) {
        case .success(let valid): fields = valid
        case .failure(let failure): return Answer(response: ModelsLabAnswer.invalid(failure.problems), refusedAs: 422)
        }
        // No NSFW checker is configured, so a request that asks for one is refused
        // rather than served unchecked.
        if FieldCoercion.flag(body["safety_checker"]) == true {
            return Answer(response: ModelsLabAnswer.error("safety_checker is not available on this gateway: no NSFW checker is configured; send \"no\""),
                          refusedAs: 422)
        }
        let webhook = body["webhook"]?.text.flatMap { $0.isEmpty ? nil : $0 }
        if let webhook, let problem = await webhooks.problem(with: webhook) { return Answer(response: ModelsLabAnswer.error(problem), refusedAs: 422) }
        var image: InputImage?
        if let field = spec.field(.image), let source = fields.values[.image] {
            do {
                image = try await images.load(source, maxSize: spec.input.maxSize)
            } catch {
                return Answer(response: ModelsLabAnswer.error("Unable to fetch image from provided URL: \(field.name): \(error.reason)"), refusedAs: 400)
            }
        }
        var generation = GenerationRequestBuilder.build(fields, image: image, randomSeed: randomSeed())
        generation.requester = key.id
        let price = RequestPrice(spec, steps: generation.steps)
        let cost = price.cost(images: generation.samples)
        let hold: CreditHold
        switch await gate.reserve(cost, for: key, queuedUpTo: jobs.maxQueueTime) {
        case .held(let held, _): hold = held
        case .insufficient: return Answer(response: ModelsLabAnswer.error(ModelsLabAnswer.insufficientCredits), refusedAs: 406)
        case .unauthorized: return Answer(response: ModelsLabAnswer.error(ModelsLabAnswer.invalidKey), refusedAs: 401)
        case .unavailable: return Answer(response: ModelsLabAnswer.error("Credits cannot be checked right now; try again later"), refusedAs: 503)
        }
        // ModelsLab's own names: `<file_prefix>-<i>.png`, or `.base64` files of base64 text. The bytes are
        // those the backend produced (the file is served with their own content type).
        let base64 = fields.boolean(.base64) ?? false
        let (prefix, files) = OutputStore.newNames(generation.samples, base64 ? .base64 : .png)
        var meta = Self.meta(generation, body: body)
        meta["file_prefix"] = .string(prefix)
        let payload = GenerationJobPayload(request: generation, files: files, base64: base64, webhook: webhook, trackID: body["track_id"]?.text,
                                           baseURL: baseURL, meta: meta, price: price)
        let job: JobRecord
        switch await jobs.enqueue(payload, key: key, dialect: "modelslab", model: spec.slug, hold: hold, cost: cost, gate: gate) {
        case .queued(let queued): job = queued
        case .tooMany(let limit):
            return Answer(response: ModelsLabAnswer.error(JobQueue.tooManyMessage(limit: limit), headers: ["Retry-After": "5"]), refusedAs: 429)
        case .failed:
            return Answer(response: ModelsLabAnswer.error("The request could not be queued; try again later"), refusedAs: 503)
        }
        return Answer(response: await answer(waitingFor: job.id, payload: payload, baseURL: baseURL, upTo: wait))
    }

    /// Waits up to `timeout` for the job to end, then answers with its state. A job that ends on
    /// this replica wakes the wait; one that ends elsewhere is seen by looking again every second.
    private func answer(waitingFor id: String, payload: GenerationJobPayload, baseURL: String, upTo timeout: Duration) async -> HTTPResponse {
        let deadline = ContinuousClock.now + timeout
        while true {
            guard let job = try? await jobs.store.job(id: id) else { return ModelsLabAnswer.error("The request could not be read; fetch it later") }
            let left = deadline - .now
            if job.state == .completed || job.state == .failed || left <= .zero || Task.isCancelled {
                let eta = max(1, Double(payload.request.steps) / 10)
                return ModelsLabAnswer.job(job, payload: payload, baseURL: baseURL, etaSeconds: eta)
            }
            await jobs.completions.wait(for: id, upTo: min(left, .seconds(1)))
        }
    }

    /// What `meta` reports: the parameters the generation actually uses.
    static func meta(_ request: GenerationRequest, body: [String: JSONValue]) -> [String: JSONValue] {
        var meta: [String: JSONValue] = [
            "prompt": .string(request.prompt), "negative_prompt": .string(request.negativePrompt ?? ""),
            "W": .integer(Int64(request.width)), "H": .integer(Int64(request.height)), "steps": .integer(Int64(request.steps)),
            "guidance_scale": .number(request.guidanceScale), "n_samples": .integer(Int64(request.samples)),
            "seed": .string(String(request.seed)), "model": .string(request.model), "safety_checker": .string("no"),
            // Accepted for compatibility; the prompt is used as sent.
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
        guard let (job, payload) = await jobs.job(id, of: key, dialect: "modelslab") else { return ModelsLabAnswer.error("Request not found") }
        return ModelsLabAnswer.job(job, payload: payload, baseURL: jobs.baseURL(for: request), etaSeconds: 1)
    }
}
