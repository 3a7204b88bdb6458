import Foundation
public import GenerationCore
public import HTTPServer

/// AUTOMATIC1111's web UI API as its clients call it: `POST /sdapi/v1/txt2img` and `/img2img`, and
/// the reads they make first (`sd-models`, `samplers`, `schedulers`, `options`, `progress`), with
/// `POST /sdapi/v1/options` to pick a checkpoint for the key's later calls.
///
/// A dialect of the one admission pipeline: each generation is restated in its catalog model's
/// fields, and validated, priced and charged as the same request through Segmind. The key travels
/// as A1111's `--api-auth` has it, HTTP Basic with the key as the password, or as a Bearer token.
public struct A1111Dialect: Sendable {
    public let admission: Admission
    public let backend: any InferenceBackend
    public let sessions: A1111Sessions
    /// The checkpoint each key picked: `sessions` in one gateway, the database for replicas.
    public let checkpoints: any CheckpointChoices
    public let maxBodyBytes: Int
    let randomSeed: @Sendable () -> UInt64

    static let name = "a1111"

    public init(
        admission: Admission, backend: any InferenceBackend, sessions: A1111Sessions = A1111Sessions(),
        checkpoints: (any CheckpointChoices)? = nil, maxBodyBytes: Int = 32 << 20,
        randomSeed: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...4_294_967_295) }
    ) {
        self.admission = admission
        self.backend = backend
        self.sessions = sessions
        self.checkpoints = checkpoints ?? sessions
        self.maxBodyBytes = maxBodyBytes
        self.randomSeed = randomSeed
    }

    public func register(on router: inout Router) {
        for task in GenerationTask.allCases {
            let path = task == .textToImage ? "txt2img" : "img2img"
            router.post(
                "/sdapi/v1/\(path)", maxBodyBytes: maxBodyBytes, checkHead: Self.requireKey, verifyHead: verifyKey,
                refusal: A1111Answer.renderer.serverRefusal
            ) { request, _ in
                await generate(request, task: task)
            }
        }
        router.get("/sdapi/v1/sd-models") { request, _ in await read(request) { key in models(for: key) } }
        router.get("/sdapi/v1/samplers") { request, _ in await read(request) { _ in Self.samplers } }
        router.get("/sdapi/v1/schedulers") { request, _ in await read(request) { _ in Self.schedulers } }
        router.get("/sdapi/v1/options") { request, _ in
            await read(request) { key in .object(["sd_model_checkpoint": .string(await checkpoint(of: key)), "samples_format": .string("png")]) }
        }
        router.post("/sdapi/v1/options", maxBodyBytes: 64 << 10, checkHead: Self.requireKey, refusal: A1111Answer.renderer.serverRefusal) {
            request, _ in await setOptions(request)
        }
        router.get("/sdapi/v1/progress") { request, _ in await read(request) { key in await progress(of: key) } }
        // What the tools list in their menus before they generate; this gateway has none of them.
        for (path, empty) in Self.nothingToList {
            router.get("/sdapi/v1/\(path)") { request, _ in await read(request) { _ in empty } }
        }
    }

    private static let nothingToList: [(String, JSONValue)] = [
        ("sd-vae", .array([])), ("upscalers", .array([])), ("latent-upscale-modes", .array([])), ("loras", .array([])),
        ("embeddings", .object(["loaded": .object([:]), "skipped": .object([:])])),
    ]

    /// A request without credentials is refused from its head, with an answer rendered once.
    static let requireKey: Router.HeadCheck = { head, _ in apiKey(in: head.headers) == nil ? missingKey : nil }

    private static let missingKey = A1111Answer.renderer.render(.missingKey)

    var verifyKey: Router.AsyncHeadCheck { admission.verifyKey(Self.credentials, renderer: A1111Answer.renderer) }

    // MARK: Generation

    func generate(_ request: HTTPRequest, task: GenerationTask) async -> HTTPResponse {
        let catalog = admission.catalog
        let body = Result { () throws(GatewayError) in try Self.object(request) }
        // The key's chosen checkpoint decides the model, which the boundary records the call under.
        var chosen: String?
        if case .success(let key) = await admission.authenticate(Self.credentials(in: request.headers)) {
            chosen = await checkpoints.checkpoint(of: key.id)
        }
        let model = body.flatMap { [chosen] body in
            Result { () throws(GatewayError) in
                try A1111Request.model(try A1111Request.checkpoint(in: body, chosen: chosen), for: task, catalog: catalog)
            }
        }
        return await admission.serve(
            Self.credentials(in: request.headers), model: (try? model.get())?.1.slug ?? "", request: request,
            renderer: A1111Answer.renderer, dialect: Self.name
        ) { call throws(GatewayError) in
            let (body, (checkpoint, model)) = (try body.get(), try model.get())
            let restated = try A1111Request(body, task: task, checkpoint: checkpoint, model: model)
            let application = Admission.Application(model: model, randomSeed: randomSeed()) { restated.fields.body(for: model) }
            let admitted: AdmittedRequest
            do throws(GatewayError) {
                admitted = try await admission.admit(application, for: call)
            } catch {
                throw restated.fields.renamed(error, for: model)
            }
            let generation = admitted.generation
            let id = await sessions.start(key: call.key.id, model: model.slug, steps: generation.steps, images: generation.samples)
            let outcome = await admission.generate(admitted, on: backend, call: call, renderer: A1111Answer.renderer) { result, _ in
                A1111Answer.images(result, request: restated, generation: generation, body: body, task: task)
            }
            await sessions.finish(id, key: call.key.id, succeeded: outcome.response.status == .ok)
            return outcome
        }
    }

    /// The body as a JSON object sent as JSON (or without a Content-Type, as some scripts do).
    static func object(_ request: HTTPRequest) throws(GatewayError) -> [String: JSONValue] {
        if request.headers.declaresOtherThanJSON { throw .unsupportedContentType }
        guard let body = try? JSONObjectReader.decode(request.body) else { throw .malformedBody }
        return body
    }

    // MARK: Reads and options

    private func read(_ request: HTTPRequest, _ answer: @escaping @Sendable (AuthenticatedKey) async -> JSONValue) async -> HTTPResponse {
        await admission.serveRead(Self.credentials(in: request.headers), renderer: A1111Answer.renderer) { key in
            .json(.ok, AnswerJSON.encode(await answer(key)))
        }
    }

    /// The checkpoints whose models the key may use, as A1111 lists its model files.
    private func models(for key: AuthenticatedKey) -> JSONValue {
        let catalog = admission.catalog
        let usable = catalog.a1111.listing(catalog).filter { $0.slugs.contains(where: key.allows(model:)) }
        return .array(
            usable.map { entry in
                .object([
                    "title": .string(entry.name), "model_name": .string(entry.name), "filename": .string(entry.name), "hash": .null,
                    "sha256": .null, "config": .null,
                ])
            })
    }

    private static let samplers: JSONValue = .array(
        A1111Samplers.names.map { .object(["name": .string($0), "aliases": .array([]), "options": .object([:])]) })

    private static let schedulers: JSONValue = .array(
        A1111Samplers.schedulers.map { .object(["name": .string($0.name), "label": .string($0.label), "aliases": .null]) })

    private func checkpoint(of key: AuthenticatedKey) async -> String {
        await checkpoints.checkpoint(of: key.id) ?? admission.catalog.a1111.defaultName
    }

    /// `POST /sdapi/v1/options`: `sd_model_checkpoint` picks the key's model; other options are
    /// the web UI's own settings and are accepted without effect.
    func setOptions(_ request: HTTPRequest) async -> HTTPResponse {
        let catalog = admission.catalog
        return await admission.serveRead(Self.credentials(in: request.headers), renderer: A1111Answer.renderer) { key throws(GatewayError) in
            let body = try Self.object(request)
            if let checkpoint = try A1111Request.checkpoint(in: ["override_settings": .object(body)], chosen: nil) {
                guard let slugs = Self.slugs(of: checkpoint, in: catalog) else { throw .unknownModel(checkpoint) }
                guard slugs.contains(where: key.allows(model:)) else { throw .modelNotAllowed(checkpoint) }
                await checkpoints.setCheckpoint(checkpoint, for: key.id)
            }
            return .json(.ok, Array("null".utf8))
        }
    }

    private static func slugs(of name: String, in catalog: ModelCatalog) -> [String]? {
        catalog.a1111.listing(catalog).first { $0.name == name }?.slugs
    }

    /// `GET /sdapi/v1/progress`: the key's own generation under way, estimated from the time its
    /// model's recent generations took.
    private func progress(of key: AuthenticatedKey) async -> JSONValue {
        let current = await sessions.progress(of: key.id)
        return .object([
            "progress": .number(current?.fraction ?? 0), "eta_relative": .number(current?.secondsLeft ?? 0),
            "state": .object([
                "skipped": .bool(false), "interrupted": .bool(false), "job": .string(current == nil ? "" : "generating"),
                "job_count": .integer(Int64(current?.count ?? 0)), "job_no": .integer(0), "sampling_step": .integer(0),
                "sampling_steps": .integer(0), "job_timestamp": .string("0"),
            ]),
            "current_image": .null, "textinfo": .null,
        ])
    }

    // MARK: Credentials

    static func credentials(in headers: HTTPHeaders) -> Result<String, GatewayError> {
        apiKey(in: headers).map { .success($0) } ?? .failure(.missingKey)
    }

    /// HTTP Basic with the key as the password (any user name), or `Authorization: Bearer <key>`.
    static func apiKey(in headers: HTTPHeaders) -> String? {
        if let token = headers.bearerToken { return token }
        guard let authorization = headers["Authorization"], authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6).trimmingSpaces())),
            let pair = String(data: decoded, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        else { return nil }
        let password = pair[pair.index(after: colon)...]
        return password.isEmpty ? nil : String(password)
    }
}
