public import GenerationCore
public import HTTPServer

/// OpenAI's Images API: `POST /v1/images/generations` (JSON), `/v1/images/edits` and
/// `/v1/images/variations` (multipart/form-data, run image-to-image), and `GET /v1/models`.
///
/// A dialect of the one admission pipeline: the request is restated in its catalog model's fields,
/// so it is validated, priced, held and charged exactly as the same request through Segmind. The
/// key travels as `Authorization: Bearer`; refusals are OpenAI's error objects under its statuses.
public struct OpenAIDialect: Sendable {
    public let admission: Admission
    public let backend: any InferenceBackend
    /// Where `response_format: url` keeps its images; nil: only `b64_json` is offered.
    public let outputs: OutputLinks?
    public let maxBodyBytes: Int
    let randomSeed: @Sendable () -> UInt64
    /// The clock of the answers' `created`.
    let clock: any WallClock

    static let name = "openai"

    public init(
        admission: Admission, backend: any InferenceBackend, outputs: OutputLinks? = nil, maxBodyBytes: Int = 32 << 20,
        randomSeed: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...999_999_999_999_999) }, clock: any WallClock = SystemWallClock()
    ) {
        self.admission = admission
        self.backend = backend
        self.outputs = outputs
        self.maxBodyBytes = maxBodyBytes
        self.randomSeed = randomSeed
        self.clock = clock
    }

    public func register(on router: inout Router) {
        for endpoint in OpenAIRequest.Endpoint.allCases {
            router.post(
                "/v1/images/\(endpoint.rawValue)", maxBodyBytes: maxBodyBytes, checkHead: Self.requireKey, verifyHead: verifyKey,
                refusal: OpenAIAnswer.renderer.serverRefusal
            ) {
                request, _ in await generate(request, endpoint)
            }
        }
        router.get("/v1/models") { request, _ in await models(request, only: nil) }
        router.get("/v1/models/{model}") { request, parameters in await models(request, only: parameters["model"] ?? "") }
    }

    /// A request without a key is refused from its head, with an answer rendered once.
    static let requireKey: Router.HeadCheck = { head, _ in head.headers.bearerToken == nil ? missingKey : nil }

    private static let missingKey = OpenAIAnswer.renderer.render(.missingKey)

    var verifyKey: Router.AsyncHeadCheck { admission.verifyKey(Self.credentials, renderer: OpenAIAnswer.renderer) }

    func generate(_ request: HTTPRequest, _ endpoint: OpenAIRequest.Endpoint) async -> HTTPResponse {
        let catalog = admission.catalog
        // Decoded before the boundary, which needs the model to record the call's usage under.
        let sent = Result { () throws(GatewayError) in try OpenAIRequest.decode(request, endpoint) }
        let model = sent.flatMap { sent in Result { () throws(GatewayError) in try OpenAIRequest.model(of: sent, endpoint, catalog: catalog) } }
        let idempotency = request.headers["Idempotency-Key"].map {
            IdempotencyClaim(key: $0, route: "POST /v1/images/\(endpoint.rawValue)", body: request.body)
        }
        let host = request.headers["Host"]
        return await admission.serve(
            Self.credentials(in: request.headers), model: (try? model.get())?.spec.slug ?? "", request: request,
            renderer: OpenAIAnswer.renderer, dialect: Self.name, idempotency: idempotency
        ) { call throws(GatewayError) in
            let (sent, model) = (try sent.get(), try model.get())
            let restated = try OpenAIRequest(sent, endpoint, model: model, catalog: catalog, canLink: outputs != nil)
            let application = Admission.Application(model: restated.model, randomSeed: randomSeed()) { restated.fields.body(for: restated.model) }
            let admitted: AdmittedRequest
            do throws(GatewayError) {
                admitted = try await admission.admit(application, for: call)
            } catch {
                throw restated.fields.renamed(error, for: restated.model)
            }
            let delivery: OpenAIAnswer.Delivery = restated.wantsLinks ? outputs.map { .links($0, host: host) } ?? .base64 : .base64
            let created = clock.now.millisecondsSince1970 / 1000
            return await admission.generate(admitted, on: backend, call: call, renderer: OpenAIAnswer.renderer) { result, _ in
                await OpenAIAnswer.images(result, delivery: delivery, created: created)
            }
        }
    }

    /// `GET /v1/models`: the names this key may generate with; `GET /v1/models/{model}`: one of them.
    func models(_ request: HTTPRequest, only name: String?) async -> HTTPResponse {
        let catalog = admission.catalog
        let created = clock.now.millisecondsSince1970 / 1000
        return await admission.serveRead(Self.credentials(in: request.headers), renderer: OpenAIAnswer.renderer) { key throws(GatewayError) in
            let usable = catalog.openAI.models.listing(catalog).filter { $0.slugs.contains(where: key.allows(model:)) }
            let models = usable.map { entry -> JSONValue in
                .object(["id": .string(entry.name), "object": .string("model"), "created": .integer(created), "owned_by": .string("sdgate")])
            }
            guard let name else { return .json(.ok, AnswerJSON.encode(JSONValue.object(["object": .string("list"), "data": .array(models)]))) }
            guard let index = usable.firstIndex(where: { $0.name == name }) else { throw .unknownModel(name) }
            return .json(.ok, AnswerJSON.encode(models[index]))
        }
    }

    static func credentials(in headers: HTTPHeaders) -> Result<String, GatewayError> {
        headers.bearerToken.map { .success($0) } ?? .failure(.missingKey)
    }
}
