import Crypto
import Foundation
public import GenerationCore
public import HTTPServer

/// Segmind's synchronous API, `POST /v1/{slug}`, checked in this order (the first refusal is the answer):
/// the key (401), the model (404, or 403 outside the key's allow-list), then the body (406 for a
/// foreign Content-Type, 400 for anything but a JSON object), the fields (422, every problem at
/// once), the input image (400), then credits (406 "Insufficient credits"), then the backend.
/// The price is held before the backend runs and charged only for a 200; every answer to an
/// authenticated key carries `x-remaining-credits`.
public struct SegmindDialect: Sendable {
    public let catalog: ModelCatalog
    public let gate: any AccessGate
    public let backend: any InferenceBackend
    public let images: ImageLoader
    public let rateLimiter: RateLimiter
    /// The job queue behind `POST /v2/{slug}`; nil: the gateway answers v1 only.
    public let jobs: JobQueue?
    /// The largest request body: a base64 image of the largest accepted size, with room to spare.
    public let maxBodyBytes: Int
    /// Picks the seed when a request asks for -1; injectable so tests can pin it.
    let randomSeed: @Sendable () -> UInt64

    public init(
        catalog: ModelCatalog, gate: any AccessGate, backend: any InferenceBackend, images: ImageLoader,
        rateLimiter: RateLimiter = RateLimiter(), jobs: JobQueue? = nil, maxBodyBytes: Int = 32 << 20,
        randomSeed: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...999_999_999_999_999) }
    ) {
        self.catalog = catalog
        self.gate = gate
        self.backend = backend
        self.images = images
        self.rateLimiter = rateLimiter
        self.jobs = jobs
        self.maxBodyBytes = maxBodyBytes
        self.randomSeed = randomSeed
    }

    public func register(on router: inout Router) {
        // A request without a valid key is refused from its head: its body is never read.
        router.post("/v1/{slug}", maxBodyBytes: maxBodyBytes, checkHead: Self.requireKey, verifyHead: verifyKey) { request, parameters in
            await handle(request, slug: parameters["slug"] ?? "")
        }
        if let jobs { registerQueued(on: &router, jobs: jobs) }
    }

    /// Refuses a request without a key from its head: its body is never read.
    static let requireKey: Router.HeadCheck = { head, _ in
        apiKey(in: head.headers) == nil ? SegmindAnswer.error(.unauthorized, SegmindAnswer.missingKey) : nil
    }

    /// Refuses an unknown, revoked or expired key from its head, so that a stranger cannot make
    /// the gateway read (and hold) a body of up to `maxBodyBytes`. The handler authenticates
    /// again, from the ledger's memory of recent keys: a key revoked in between is still refused.
    var verifyKey: Router.AsyncHeadCheck {
        { [gate] head, _ in
            guard let apiKey = Self.apiKey(in: head.headers) else { return SegmindAnswer.error(.unauthorized, SegmindAnswer.missingKey) }
            return await gate.authenticate(apiKey: apiKey) == nil ? SegmindAnswer.error(.unauthorized, SegmindAnswer.invalidKey) : nil
        }
    }

    /// How an admitted request runs: now, answering with its images (v1), or as a job, answering
    /// with where to poll for it (v2).
    enum Mode: String {
        case now = "v1"
        case queued = "v2"
    }

    public func handle(_ request: HTTPRequest, slug: String) async -> HTTPResponse {
        await handle(request, slug: slug, mode: .now)
    }

    func handle(_ request: HTTPRequest, slug: String, mode: Mode) async -> HTTPResponse {
        guard let apiKey = Self.apiKey(in: request.headers) else { return SegmindAnswer.error(.unauthorized, SegmindAnswer.missingKey) }
        guard let key = await gate.authenticate(apiKey: apiKey) else { return SegmindAnswer.error(.unauthorized, SegmindAnswer.invalidKey) }
        let usage = UsageContext(keyID: key.id, model: slug, requestID: request.headers["x-request-id"] ?? "", start: .now)
        var outcome: Outcome
        if let limit = key.rateLimitPerMinute, case .limited(let wait) = rateLimiter.check(key: key.id, perMinute: limit) {
            outcome = Outcome(response: SegmindAnswer.rateLimited(retryAfter: wait, now: rateLimiter.now()))
        } else if let idempotencyKey = request.headers["Idempotency-Key"] {
            outcome = await handleOnce(request, slug: slug, key: key, mode: mode, idempotencyKey: idempotencyKey, usage: usage)
        } else {
            outcome = await handle(request, slug: slug, key: key, mode: mode, idempotencyKey: nil, usage: usage)
        }
        // Every answer to an authenticated key shows its available credits.
        if outcome.remaining == nil { outcome.remaining = await gate.remaining(for: key) }
        if let remaining = outcome.remaining { outcome.response.headers.set("x-remaining-credits", remaining.description) }
        // A queued job's usage is recorded when it ends; a charge's, with the charge.
        if catalog[slug] != nil && !outcome.queued && !outcome.usageRecorded {
            await gate.recordUsage(usage.of(outcome))
        }
        return outcome.response
    }

    /// What a request's usage event says besides its outcome.
    struct UsageContext {
        let keyID: String
        let model: String
        let requestID: String
        let start: ContinuousClock.Instant

        func of(_ outcome: Outcome) -> GenerationUsage {
            GenerationUsage(keyID: keyID, model: model, status: outcome.response.status.code, cost: outcome.charged,
                            held: outcome.held, duration: .now - start, requestID: requestID, upstream: outcome.upstream)
        }
    }

    /// `Idempotency-Key`: a repeat of the same request gets the first answer and no second charge;
    /// the same key with another request is a 422. Only 200 answers are kept: a failure charged
    /// nothing, and its repeat runs again. The answer is kept even if the client left before it
    /// came (the work was charged): its retry gets it. A claim whose request died with its gateway
    /// ends with the request's hold, and a retry then runs afresh.
    private func handleOnce(_ request: HTTPRequest, slug: String, key: AuthenticatedKey, mode: Mode, idempotencyKey: String,
                            usage: UsageContext) async -> Outcome {
        guard !idempotencyKey.isEmpty, idempotencyKey.utf8.count <= 255 else {
            return Outcome(response: SegmindAnswer.error(.unprocessableContent, "Idempotency-Key must have 1 to 255 characters"))
        }
        var hasher = SHA256()
        hasher.update(data: Array("POST /\(mode.rawValue)/\(slug)\n".utf8))
        hasher.update(data: request.body)
        switch await gate.claimIdempotency(idempotencyKey, fingerprint: Array(hasher.finalize()), for: key) {
        case .replay(var response):
            response.headers.set("x-idempotent-replayed", "true")
            return Outcome(response: response)
        case .inProgress:
            return Outcome(response: SegmindAnswer.error(HTTPStatus(code: 409), "A request with this Idempotency-Key is still running"))
        case .mismatch:
            return Outcome(response: SegmindAnswer.error(.unprocessableContent, "Idempotency-Key was already used for a different request"))
        case .unavailable:
            return Outcome(response: SegmindAnswer.error(.serviceUnavailable, "Idempotency-Key cannot be checked right now; retry later"))
        case .proceed:
            let outcome = await handle(request, slug: slug, key: key, mode: mode, idempotencyKey: idempotencyKey, usage: usage)
            await uncancelled { [gate] in
                if outcome.response.status == .ok {
                    await gate.completeIdempotency(idempotencyKey, for: key, answer: outcome.response)
                } else {
                    await gate.releaseIdempotency(idempotencyKey, for: key)
                }
            }
            return outcome
        }
    }

    /// An answer, what it charged, and the credits left when the answer already knows them.
    struct Outcome {
        var response: HTTPResponse
        var charged: Credits = .zero
        var held: Credits = .zero
        var remaining: Credits?
        var upstream: UpstreamReport?
        /// Queued as a job, which records its own usage when it ends.
        var queued = false
        /// The usage event went to the ledger with the charge (a charge the ledger fails to write
        /// takes its event with it; the failure is logged).
        var usageRecorded = false
    }

    /// A request that passed every check, with its price held.
    struct Admitted {
        let generation: GenerationRequest
        let price: RequestPrice
        /// What is held: the price of every image asked for.
        let cost: Credits
        let hold: CreditHold
        let base64: Bool
        /// Credits left after the hold.
        let remaining: Credits
    }

    private func handle(_ request: HTTPRequest, slug: String, key: AuthenticatedKey, mode: Mode, idempotencyKey: String?,
                        usage: UsageContext) async -> Outcome {
        let admitted: Admitted
        switch await admit(request, slug: slug, key: key, mode: mode) {
        case .success(let value): admitted = value
        case .failure(let refusal): return refusal.outcome
        }
        if let idempotencyKey { await gate.backIdempotency(idempotencyKey, for: key, with: admitted.hold) }
        switch mode {
        case .now: return await generate(admitted, usage: usage)
        case .queued: return await enqueue(admitted, key: key, request: request)
        }
    }

    /// Runs the backend with the hold kept open, then charges the images it delivered (fewer than
    /// asked for cost less; none is a failure) whether or not the client is still there: the team
    /// paid for the work either way.
    private func generate(_ admitted: Admitted, usage: UsageContext) async -> Outcome {
        let failure: InferenceError
        do {
            var result = try await gate.generate(admitted.generation, on: backend, holding: admitted.hold)
            result.images = Array(result.images.prefix(admitted.generation.samples))
            if !result.images.isEmpty {
                let charge = admitted.price.cost(images: result.images.count)
                var outcome = Outcome(response: SegmindAnswer.success(result, base64: admitted.base64, cost: charge), charged: charge,
                                      held: admitted.cost, upstream: result.upstream, usageRecorded: true)
                let event = usage.of(outcome)
                outcome.remaining = await uncancelled { [gate] in await gate.settle(admitted.hold, charge: charge, recording: event) }
                return outcome
            }
            failure = .failed("the backend returned no images")
        } catch {
            failure = error
        }
        let remaining = await uncancelled { [gate] in await gate.release(admitted.hold, reason: failure.description) }
        return Outcome(response: SegmindAnswer.backendError(failure), held: admitted.cost, remaining: remaining)
    }

    /// An answer that refuses the request; nothing is held.
    struct Refusal: Error {
        let outcome: Outcome

        init(_ response: HTTPResponse, remaining: Credits? = nil) {
            outcome = Outcome(response: response, remaining: remaining)
        }
    }

    /// The checks in order, then the price held.
    private func admit(_ request: HTTPRequest, slug: String, key: AuthenticatedKey, mode: Mode) async -> Result<Admitted, Refusal> {
        guard let model = catalog[slug] else { return .failure(Refusal(SegmindAnswer.error(.notFound, "Model '\(slug)' does not exist"))) }
        guard key.allows(model: slug) else {
            return .failure(Refusal(SegmindAnswer.error(HTTPStatus(code: 403), "This API key may not use model '\(slug)'")))
        }
        if let type = request.headers["Content-Type"], !Self.isJSON(type) {
            return .failure(Refusal(SegmindAnswer.error(.notAcceptable, "Content-Type must be application/json")))
        }
        guard let body = try? JSONObjectReader.decode(request.body) else {
            return .failure(Refusal(SegmindAnswer.error(.badRequest, "The request body must be a JSON object")))
        }
        let fields: ValidatedFields
        switch RequestValidator.validate(body, for: model) {
        case .success(let valid): fields = valid
        case .failure(let failure): return .failure(Refusal(SegmindAnswer.error(.unprocessableContent, failure.message)))
        }
        var image: InputImage?
        if let field = model.field(.image), let source = fields.values[.image] {
            do {
                image = try await images.load(source, maxSize: model.input.maxSize)
            } catch {
                return .failure(Refusal(SegmindAnswer.error(.badRequest, "\(field.name): Invalid image URL or path: \(error.reason)")))
            }
        }
        // A binary v1 answer carries one image, so exactly one is generated and charged; a job's
        // images are files, however many.
        let base64 = fields.boolean(.base64) ?? true
        let oneImage = mode == .now && !base64
        var generation = GenerationRequestBuilder.build(fields, image: image, samples: oneImage ? 1 : nil, randomSeed: randomSeed())
        generation.requester = key.id
        let price = RequestPrice(model, steps: generation.steps)
        let cost = price.cost(images: generation.samples)
        switch await gate.reserve(cost, for: key, queuedUpTo: mode == .queued ? jobs?.maxQueueTime ?? .zero : .zero) {
        case .held(let hold, let remaining):
            return .success(Admitted(generation: generation, price: price, cost: cost, hold: hold, base64: base64, remaining: remaining))
        case .insufficient(let remaining):
            return .failure(Refusal(SegmindAnswer.error(.notAcceptable, SegmindAnswer.insufficientCredits), remaining: remaining))
        case .unauthorized:
            return .failure(Refusal(SegmindAnswer.error(.unauthorized, SegmindAnswer.invalidKey)))
        case .unavailable:
            return .failure(Refusal(SegmindAnswer.error(.serviceUnavailable, "credits cannot be checked right now; retry later")))
        }
    }

    /// `x-api-key`, or `Authorization: Bearer <key>` as the error message's wording allows.
    static func apiKey(in headers: HTTPHeaders) -> String? {
        if let key = headers["x-api-key"]?.trimmingSpaces(), !key.isEmpty { return String(key) }
        if let authorization = headers["Authorization"], authorization.lowercased().hasPrefix("bearer ") {
            let key = authorization.dropFirst(7).trimmingSpaces()
            return key.isEmpty ? nil : String(key)
        }
        return nil
    }

    /// `application/json`, with parameters such as `charset` allowed.
    static func isJSON(_ contentType: String) -> Bool {
        contentType.split(separator: ";").first?.trimmingSpaces().lowercased() == "application/json"
    }
}
