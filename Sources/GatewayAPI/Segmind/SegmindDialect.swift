import Foundation
public import GenerationCore
public import HTTPServer
public import Jobs

/// Segmind's synchronous API, `POST /v1/{slug}`, checked in this order (the first refusal is the answer):
/// the key (401), the model (404, or 403 outside the key's allow-list), then the body (406 for a
/// foreign Content-Type, 400 for anything but a JSON object), the fields (422, every problem at
/// once), the input image (400), then credits (406 "Insufficient credits"), then the backend.
/// The price is held before the backend runs and charged only for a 200; every answer to an
/// authenticated key carries `x-remaining-credits`.
public struct SegmindDialect: Sendable {
    public let admission: Admission
    public let backend: any InferenceBackend
    /// The job queue behind `POST /v2/{slug}`; nil: the gateway answers v1 only.
    public let jobs: (any GenerationJobs)?
    /// The largest request body: a base64 image of the largest accepted size, with room to spare.
    public let maxBodyBytes: Int
    /// Picks the seed when a request asks for -1; injectable so tests can pin it.
    let randomSeed: @Sendable () -> UInt64

    public init(
        admission: Admission, backend: any InferenceBackend, jobs: (any GenerationJobs)? = nil, maxBodyBytes: Int = 32 << 20,
        randomSeed: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...999_999_999_999_999) }
    ) {
        self.admission = admission
        self.backend = backend
        self.jobs = jobs
        self.maxBodyBytes = maxBodyBytes
        self.randomSeed = randomSeed
    }

    var catalog: ModelCatalog { admission.catalog }

    public func register(on router: inout Router) {
        // A request without a valid key is refused from its head: its body is never read.
        router.post(
            "/v1/{slug}", maxBodyBytes: maxBodyBytes, checkHead: Self.requireKey, verifyHead: verifyKey,
            refusal: SegmindAnswer.renderer.serverRefusal
        ) { request, parameters in
            await handle(request, slug: parameters["slug"] ?? "")
        }
        if let jobs { registerQueued(on: &router, jobs: jobs) }
        registerSteering(on: &router)
    }

    /// Refuses a request without a key from its head: its body is never read. The refusal is the
    /// same every time, and a stranger can ask for it as fast as the network allows: it is rendered once.
    static let requireKey: Router.HeadCheck = { head, _ in
        apiKey(in: head.headers) == nil ? missingKey : nil
    }

    private static let missingKey = SegmindAnswer.renderer.render(.missingKey)

    var verifyKey: Router.AsyncHeadCheck { admission.verifyKey(Self.credentials, renderer: SegmindAnswer.renderer) }

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
        let idempotency = request.headers["Idempotency-Key"].map {
            IdempotencyClaim(key: $0, route: "POST /\(mode.rawValue)/\(slug)", body: request.body)
        }
        return await admission.serve(
            Self.credentials(in: request.headers), model: slug, request: request, renderer: SegmindAnswer.renderer,
            dialect: Self.jobDialect, idempotency: idempotency
        ) { call throws(GatewayError) in
            let admitted = try await admission.admit(application(request, slug: slug, mode: mode), for: call)
            switch mode {
            case .now:
                return await admission.generate(admitted, on: backend, call: call, renderer: SegmindAnswer.renderer) { result, charge in
                    SegmindAnswer.success(result, base64: admitted.fields.boolean(.base64) ?? true, cost: charge)
                }
            case .queued:
                return try await enqueue(admitted, request: request)
            }
        }
    }

    /// The request in the pipeline's terms: the model from the path (404 before anything else),
    /// then the body, which must be a JSON object sent as JSON.
    private func application(_ request: HTTPRequest, slug: String, mode: Mode) throws(GatewayError) -> Admission.Application {
        guard let model = catalog[slug] else { throw .unknownModel(slug) }
        let (notJSON, body) = (request.headers.declaresOtherThanJSON, request.body)
        var application = Admission.Application(model: model, randomSeed: randomSeed()) { () throws(GatewayError) in
            if notJSON { throw .unsupportedContentType }
            guard let fields = try? JSONObjectReader.decode(body) else { throw .malformedBody }
            return fields
        }
        switch mode {
        case .now:
            // A binary answer carries one image, so exactly one is generated and charged.
            application.samples = { fields in (fields.boolean(.base64) ?? true) ? nil : 1 }
        case .queued:
            // A job's images are files, however many.
            application.queuedUpTo = jobs?.maxQueueTime ?? .zero
        }
        return application
    }

    static func credentials(in headers: HTTPHeaders) -> Result<String, GatewayError> {
        apiKey(in: headers).map { .success($0) } ?? .failure(.missingKey)
    }

    /// `x-api-key`, or `Authorization: Bearer <key>` as the error message's wording allows.
    static func apiKey(in headers: HTTPHeaders) -> String? {
        if let key = headers["x-api-key"]?.trimmingSpaces(), !key.isEmpty { return String(key) }
        return headers.bearerToken
    }
}
