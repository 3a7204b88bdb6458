import Crypto
import Foundation
public import GenerationCore
public import HTTPServer

/// Segmind's synchronous API, `POST /v1/{slug}`, in the order Part A of the contract fixes:
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
    /// The largest request body: a base64 image of the largest accepted size, with room to spare.
    public let maxBodyBytes: Int
    /// Picks the seed when a request asks for -1; injectable so tests can pin it.
    let randomSeed: @Sendable () -> UInt64

    public init(
        catalog: ModelCatalog, gate: any AccessGate, backend: any InferenceBackend, images: ImageLoader,
        rateLimiter: RateLimiter = RateLimiter(), maxBodyBytes: Int = 32 << 20,
        randomSeed: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...999_999_999_999_999) }
    ) {
        self.catalog = catalog
        self.gate = gate
        self.backend = backend
        self.images = images
        self.rateLimiter = rateLimiter
        self.maxBodyBytes = maxBodyBytes
        self.randomSeed = randomSeed
    }

    public func register(on router: inout Router) {
        // A request without a key is refused from its head: its body is never read.
        router.post("/v1/{slug}", maxBodyBytes: maxBodyBytes, checkHead: { head, _ in
            Self.apiKey(in: head.headers) == nil ? SegmindAnswer.error(.unauthorized, SegmindAnswer.missingKey) : nil
        }) { request, parameters in
            await handle(request, slug: parameters["slug"] ?? "")
        }
    }

    public func handle(_ request: HTTPRequest, slug: String) async -> HTTPResponse {
        guard let apiKey = Self.apiKey(in: request.headers) else { return SegmindAnswer.error(.unauthorized, SegmindAnswer.missingKey) }
        guard let key = await gate.authenticate(apiKey: apiKey) else { return SegmindAnswer.error(.unauthorized, SegmindAnswer.invalidKey) }
        let start = ContinuousClock.now
        var outcome: Outcome
        if let limit = key.rateLimitPerMinute, case .limited(let wait) = rateLimiter.check(key: key.id, perMinute: limit) {
            outcome = Outcome(response: SegmindAnswer.rateLimited(retryAfter: wait, now: rateLimiter.now()))
        } else if let idempotencyKey = request.headers["Idempotency-Key"] {
            outcome = await handleOnce(request, slug: slug, key: key, idempotencyKey: idempotencyKey)
        } else {
            outcome = await handle(request, slug: slug, key: key)
        }
        // Part A item 5: every answer to an authenticated key shows its available credits.
        if outcome.remaining == nil { outcome.remaining = await gate.remaining(for: key) }
        if let remaining = outcome.remaining { outcome.response.headers.set("x-remaining-credits", remaining.description) }
        if catalog[slug] != nil {
            await gate.recordUsage(GenerationUsage(keyID: key.id, model: slug, status: outcome.response.status.code, cost: outcome.charged,
                                                   held: outcome.held, duration: .now - start, requestID: request.headers["x-request-id"] ?? "",
                                                   upstream: outcome.upstream))
        }
        return outcome.response
    }

    /// `Idempotency-Key`: a repeat of the same request gets the first answer and no second charge;
    /// the same key with another request is a 422. Only 200 answers are kept: a failure charged
    /// nothing, and its repeat runs again.
    private func handleOnce(_ request: HTTPRequest, slug: String, key: AuthenticatedKey, idempotencyKey: String) async -> Outcome {
        guard !idempotencyKey.isEmpty, idempotencyKey.utf8.count <= 255 else {
            return Outcome(response: SegmindAnswer.error(.unprocessableContent, "Idempotency-Key must have 1 to 255 characters"))
        }
        var hasher = SHA256()
        hasher.update(data: Array("POST /v1/\(slug)\n".utf8))
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
            let outcome = await handle(request, slug: slug, key: key)
            if outcome.response.status == .ok {
                await gate.completeIdempotency(idempotencyKey, for: key, answer: outcome.response)
            } else {
                await gate.releaseIdempotency(idempotencyKey, for: key)
            }
            return outcome
        }
    }

    /// An answer, what it charged, and the credits left when the answer already knows them.
    private struct Outcome {
        var response: HTTPResponse
        var charged: Credits = .zero
        var held: Credits = .zero
        var remaining: Credits?
        var upstream: UpstreamReport?
    }

    private func handle(_ request: HTTPRequest, slug: String, key: AuthenticatedKey) async -> Outcome {
        guard let model = catalog[slug] else { return Outcome(response: SegmindAnswer.error(.notFound, "Model '\(slug)' does not exist")) }
        guard key.allows(model: slug) else {
            return Outcome(response: SegmindAnswer.error(HTTPStatus(code: 403), "This API key may not use model '\(slug)'"))
        }
        if let type = request.headers["Content-Type"], !Self.isJSON(type) {
            return Outcome(response: SegmindAnswer.error(.notAcceptable, "Content-Type must be application/json"))
        }
        guard let body = try? JSONDecoder().decode([String: JSONValue].self, from: Data(request.body)) else {
            return Outcome(response: SegmindAnswer.error(.badRequest, "The request body must be a JSON object"))
        }
        let fields: ValidatedFields
        switch RequestValidator.validate(body, for: model) {
        case .success(let valid): fields = valid
        case .failure(let failure): return Outcome(response: SegmindAnswer.error(.unprocessableContent, failure.message))
        }
        var image: InputImage?
        if let field = model.field(.image), let source = fields.string(.image) {
            do {
                image = try await images.load(source, maxSize: model.input.maxSize)
            } catch {
                return Outcome(response: SegmindAnswer.error(.badRequest, "\(field.name): Invalid image URL or path: \(error.reason)"))
            }
        }
        // Binary answers carry one image, so exactly one is generated and charged.
        let base64 = fields.boolean(.base64) ?? true
        let generation = GenerationRequestBuilder.build(fields, image: image, samples: base64 ? nil : 1, randomSeed: randomSeed())
        let defaultSteps = model.field(.steps)?.defaultValue?.asDouble.map { Int($0) } ?? generation.steps
        let cost = model.price.cost(samples: generation.samples, steps: generation.steps, defaultSteps: defaultSteps)
        let hold: CreditHold
        switch await gate.reserve(cost, for: key) {
        case .held(let held, _):
            hold = held
        case .insufficient(let remaining):
            return Outcome(response: SegmindAnswer.error(.notAcceptable, SegmindAnswer.insufficientCredits), remaining: remaining)
        case .unavailable:
            return Outcome(response: SegmindAnswer.error(.serviceUnavailable, "credits cannot be checked right now; retry later"))
        }
        do {
            let result = try await backend.generate(generation)
            let remaining = await gate.settle(hold, charge: cost)
            return Outcome(response: SegmindAnswer.success(result, base64: base64, cost: cost), charged: cost, held: cost, remaining: remaining,
                           upstream: result.upstream)
        } catch {
            let remaining = await gate.release(hold, reason: error.description)
            return Outcome(response: SegmindAnswer.backendError(error), held: cost, remaining: remaining)
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
