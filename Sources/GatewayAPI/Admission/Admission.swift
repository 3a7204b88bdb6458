public import GenerationCore
import GuardedHTTP
import HTTPServer

/// The one way a generation request is admitted, whatever its dialect: authenticate, rate limit,
/// allow-list, decode, validate, load the input image, build the `GenerationRequest`, price it and
/// hold the price. Each step either passes or refuses with a `GatewayError`; a dialect supplies only
/// what it decoded (`Application`) and renders what comes back.
///
/// `serve` (Admission+Boundary.swift) wraps every call in the one error boundary, which also sets
/// `x-remaining-credits` and records usage; `generate` (Admission+Generate.swift) runs an admitted
/// request at once and settles its hold.
public struct Admission: Sendable {
    public let catalog: ModelCatalog
    public let gate: any AccessGate
    public let images: ImageLoader
    /// One limiter for every dialect: a key's rate is per key, whichever API it calls.
    public let rateLimiter: any RateLimiting
    /// The calls under way, which a stopping gateway waits for.
    public let callsInFlight: CallsInFlight

    public init(
        catalog: ModelCatalog, gate: any AccessGate, images: ImageLoader, rateLimiter: any RateLimiting = RateLimiter(),
        callsInFlight: CallsInFlight = CallsInFlight()
    ) {
        self.catalog = catalog
        self.gate = gate
        self.images = images
        self.rateLimiter = rateLimiter
        self.callsInFlight = callsInFlight
    }

    /// What a dialect decoded from one request, in the pipeline's terms.
    public struct Application: Sendable {
        public let model: ModelSpec
        /// The request's fields, decoded only once the model checks passed (a refused request's
        /// body is never parsed).
        public var fields: @Sendable () throws(GatewayError) -> [String: JSONValue]
        /// The dialect's own checks of the validated fields (options it refuses, a webhook URL).
        public var check: @Sendable (_ fields: ValidatedFields, _ body: [String: JSONValue]) async -> GatewayError? = { _, _ in nil }
        /// How many images to make regardless of the fields (a binary answer carries exactly one);
        /// nil: as many as the fields ask for.
        public var samples: @Sendable (ValidatedFields) -> Int? = { _ in nil }
        /// The seed used when the request asks for a random one.
        public var randomSeed: UInt64
        /// How long the request may wait in a job queue before it runs (zero: it runs at once).
        public var queuedUpTo: Duration = .zero

        public init(model: ModelSpec, randomSeed: UInt64, fields: @escaping @Sendable () throws(GatewayError) -> [String: JSONValue]) {
            self.model = model
            self.randomSeed = randomSeed
            self.fields = fields
        }
    }

    /// Steps 3 to 8: allow-list, decode, validate, the dialect's checks, the input image, the
    /// request, its price, the hold. Nothing is held unless every step passed.
    public func admit(_ application: Application, for call: Call) async throws(GatewayError) -> AdmittedRequest {
        let model = application.model
        guard call.key.allows(model: model.slug) else { throw .modelNotAllowed(model.slug) }
        let body = try application.fields()
        let fields: ValidatedFields
        switch RequestValidator.validate(body, for: model) {
        case .success(let valid): fields = valid
        case .failure(let failure): throw .invalidFields(failure.problems)
        }
        // The host names the checks and the image look up (a webhook, an image URL) are its key's.
        let key = call.key.id
        if let problem = await HostResolver.$owner.withValue(key, operation: { await application.check(fields, body) }) { throw problem }
        var image: InputImage?
        if let field = model.field(.image), let source = fields.values[.image] {
            let loaded = await HostResolver.$owner.withValue(key) { () async -> Result<InputImage, ImageProblem> in
                do throws(ImageProblem) {
                    return .success(try await images.load(source, maxSize: model.input.maxSize))
                } catch {
                    return .failure(error)
                }
            }
            switch loaded {
            case .success(let loaded): image = loaded
            case .failure(let problem) where problem.busy: throw .unreadableRequest(.serviceUnavailable, "\(field.name): \(problem.reason)")
            case .failure(let problem): throw .invalidImage(field: field.name, reason: problem.reason)
            }
        }
        var generation = GenerationRequestBuilder.build(
            fields, image: image, samples: application.samples(fields), randomSeed: application.randomSeed)
        generation.requester = call.key.id
        let price = RequestPrice(model, steps: generation.steps)
        let cost = price.cost(images: generation.samples)
        switch await gate.reserve(cost, for: call.key, queuedUpTo: application.queuedUpTo) {
        case .held(let hold, let remaining):
            // Backed even if the client just left: the work runs on, and a claim without its hold
            // would lapse under it and let a retry run it again.
            if let ticket = call.idempotency { await uncancelled { [gate] in await gate.backIdempotency(ticket, for: call.key, with: hold) } }
            return AdmittedRequest(key: call.key, fields: fields, generation: generation, price: price, cost: cost, hold: hold, remaining: remaining)
        case .insufficient: throw .insufficientCredits
        case .unauthorized: throw .invalidKey
        case .unavailable: throw .creditsUnavailable
        }
    }
}

/// A request that passed every check, with its price held.
public struct AdmittedRequest: Sendable {
    public let key: AuthenticatedKey
    public let fields: ValidatedFields
    public let generation: GenerationRequest
    public let price: RequestPrice
    /// What is held: the price of every image asked for.
    public let cost: Credits
    public let hold: CreditHold
    /// Credits left after the hold.
    public let remaining: Credits
}
