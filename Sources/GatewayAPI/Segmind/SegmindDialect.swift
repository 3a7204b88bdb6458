import Foundation
public import GenerationCore
public import HTTPServer

/// Segmind's synchronous API, `POST /v1/{slug}`, in the order Part A of the contract fixes:
/// the key, then the body (406 for a foreign Content-Type, 400 for anything but a JSON object), then
/// the fields (422, every problem at once), then the input image (400), then credits, then the
/// backend. Nothing is charged for an answer other than 200.
public struct SegmindDialect: Sendable {
    public let catalog: ModelCatalog
    public let gate: any AccessGate
    public let backend: any InferenceBackend
    public let images: ImageLoader
    /// The largest request body: a base64 image of the largest accepted size, with room to spare.
    public let maxBodyBytes: Int
    /// Picks the seed when a request asks for -1; injectable so tests can pin it.
    let randomSeed: @Sendable () -> UInt64

    public init(
        catalog: ModelCatalog, gate: any AccessGate, backend: any InferenceBackend, images: ImageLoader,
        maxBodyBytes: Int = 32 << 20,
        randomSeed: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...999_999_999_999_999) }
    ) {
        self.catalog = catalog
        self.gate = gate
        self.backend = backend
        self.images = images
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
        guard let key = Self.apiKey(in: request.headers) else { return SegmindAnswer.error(.unauthorized, SegmindAnswer.missingKey) }
        guard await gate.authenticate(apiKey: key) != nil else { return SegmindAnswer.error(.unauthorized, SegmindAnswer.invalidKey) }
        guard let model = catalog[slug] else { return SegmindAnswer.error(.notFound, "Model '\(slug)' does not exist") }
        if let type = request.headers["Content-Type"], !Self.isJSON(type) {
            return SegmindAnswer.error(.notAcceptable, "Content-Type must be application/json")
        }
        guard let body = try? JSONDecoder().decode([String: JSONValue].self, from: Data(request.body)) else {
            return SegmindAnswer.error(.badRequest, "The request body must be a JSON object")
        }
        let fields: ValidatedFields
        switch RequestValidator.validate(body, for: model) {
        case .success(let valid): fields = valid
        case .failure(let failure): return SegmindAnswer.error(.unprocessableContent, failure.message)
        }
        var image: InputImage?
        if let field = model.field(.image), let source = fields.string(.image) {
            do {
                image = try await images.load(source, maxSize: model.input.maxSize)
            } catch {
                return SegmindAnswer.error(.badRequest, "\(field.name): Invalid image URL or path: \(error.reason)")
            }
        }
        // Binary answers carry one image, so exactly one is generated and charged.
        let base64 = fields.boolean(.base64) ?? true
        let generation = GenerationRequestBuilder.build(fields, image: image, samples: base64 ? nil : 1, randomSeed: randomSeed())
        let defaultSteps = model.field(.steps)?.defaultValue?.asDouble.map { Int($0) } ?? generation.steps
        let cost = model.price.cost(samples: generation.samples, steps: generation.steps, defaultSteps: defaultSteps)
        do {
            let result = try await backend.generate(generation)
            return SegmindAnswer.success(result, base64: base64, cost: cost)
        } catch {
            return SegmindAnswer.backendError(error)
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
