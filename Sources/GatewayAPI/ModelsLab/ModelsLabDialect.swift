import Foundation
import GenerationCore
public import HTTPServer
public import Jobs

/// The StableDiffusionAPI / ModelsLab v3 API: `POST /api/v3/img2img`, `/api/v3/text2img`, and
/// `/api/v3/fetch/{id}` or `/api/v3/fetch` (`request_id` in the body).
///
/// The key travels in the body; every answer is HTTP 200 with a `status`. A generation is a job:
/// the call waits up to `wait` for it and answers `success`, or else `processing` with where to
/// fetch it, and the job completes in the background.
public struct ModelsLabDialect: Sendable {
    public let admission: Admission
    public let jobs: any GenerationJobs
    /// Checks `webhook` URLs against the address rules before a job is queued.
    public let webhooks: WebhookSender
    /// How long a call waits for its job before answering `processing`.
    public let wait: Duration
    public let maxBodyBytes: Int
    let randomSeed: @Sendable () -> UInt64

    public init(
        admission: Admission, jobs: any GenerationJobs, webhooks: WebhookSender = WebhookSender(), wait: Duration = .seconds(20),
        maxBodyBytes: Int = 32 << 20, randomSeed: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...4_294_967_295) }
    ) {
        self.admission = admission
        self.jobs = jobs
        self.webhooks = webhooks
        self.wait = wait
        self.maxBodyBytes = maxBodyBytes
        self.randomSeed = randomSeed
    }

    public func register(on router: inout Router) {
        // The server's own refusals (a body too large or too slow, no room for another body) keep
        // their HTTP status, unlike the API's answers: a client or proxy that retries on 503 must see it.
        let refusal: Router.Refusal = { status, reason in
            var answer = ModelsLabAnswer.renderer.render(.unreadableRequest(status, reason))
            answer.status = status
            return answer
        }
        for (endpoint, spec) in admission.catalog.modelsLab.sorted(by: { $0.key < $1.key }) {
            router.post("/api/v3/\(endpoint)", maxBodyBytes: bodyLimit(takesImage: spec.field(.image) != nil), refusal: refusal) {
                request, _ in await generate(request, endpoint: endpoint)
            }
        }
        for task in GenerationTask.allCases {
            let path = task == .textToImage ? "text2img" : "img2img"
            router.post("/api/v6/images/\(path)", maxBodyBytes: bodyLimit(takesImage: task == .imageToImage), refusal: refusal) {
                request, _ in await generate(request, task: task)
            }
        }
        for api in API.allCases {
            router.post("\(api.fetchPath){id}", maxBodyBytes: 64 << 10, refusal: refusal) { request, parameters in
                await fetch(request, id: parameters["id"], api: api)
            }
            router.post(String(api.fetchPath.dropLast()), maxBodyBytes: 64 << 10, refusal: refusal) { request, _ in
                await fetch(request, id: nil, api: api)
            }
        }
        registerSteering(on: &router, refusal: refusal)
    }

    /// The API version a call came in through, which its answers' links lead back to.
    enum API: CaseIterable {
        case v3, v6

        var fetchPath: String { self == .v3 ? "/api/v3/fetch/" : "/api/v6/images/fetch/" }
    }

    // MARK: Generation

    /// v3: the endpoint is the model, and its fields are the catalog's v3 fields.
    func generate(_ request: HTTPRequest, endpoint: String) async -> HTTPResponse {
        guard let spec = admission.catalog.modelsLab[endpoint] else { return ModelsLabAnswer.renderer.render(.unknownModel(endpoint)) }
        return await generate(request, api: .v3, model: { _ throws(GatewayError) in spec }, restate: nil)
    }

    /// v6: `model_id` names the model, and v6's fields are restated in that model's.
    func generate(_ request: HTTPRequest, task: GenerationTask) async -> HTTPResponse {
        let catalog = admission.catalog
        return await generate(
            request, api: .v6, model: { body throws(GatewayError) in try ModelsLabV6Request.model(of: body, task: task, catalog: catalog) },
            restate: { body, model throws(GatewayError) in try ModelsLabV6Request.fields(body, task: task, model: model) })
    }

    private func bodyLimit(takesImage: Bool) -> Int {
        takesImage ? maxBodyBytes : min(maxBodyBytes, Self.maxTextBodyBytes)
    }

    /// The largest body of an endpoint that takes no image: room for its fields several times over
    /// (a prompt and a negative prompt of 10,000 characters each, every one escaped as six bytes,
    /// take 120 KB). A body is read before its key is known: anyone may send one this large.
    static let maxTextBodyBytes = 1 << 20

    /// The key travels in the body, so the body is read first, off the event loop if it is large
    /// (an image's megabytes, sent by anyone: the key is in them); then the one pipeline, and a job.
    private func generate(
        _ request: HTTPRequest, api: API, model: (_ body: [String: JSONValue]) throws(GatewayError) -> ModelSpec,
        restate: (@Sendable (_ body: [String: JSONValue], _ model: ModelSpec) throws(GatewayError) -> RestatedFields)?
    ) async -> HTTPResponse {
        let body =
            request.body.count > Self.maxTextBodyBytes
            ? await withTaskExecutorPreference(globalConcurrentExecutor) { Self.fields(of: request) } : Self.fields(of: request)
        let spec = body.flatMap { body in Result { () throws(GatewayError) in try model(body) } }
        let baseURL = jobs.baseURL(host: request.headers["Host"])
        return await admission.serve(
            Self.credentials(in: body), model: (try? spec.get())?.slug ?? "", request: request, renderer: ModelsLabAnswer.renderer,
            dialect: Self.jobDialect
        ) { call throws(GatewayError) in
            let (body, spec) = (try body.get(), try spec.get())
            let restated = try restate?(body, spec)
            var application = Admission.Application(model: spec, randomSeed: randomSeed()) { restated?.body(for: spec) ?? body }
            application.queuedUpTo = jobs.maxQueueTime
            // The body as sent: v6's is restated in the model's fields, which have no safety checker or webhook.
            application.check = { [webhooks] _, _ in await Self.problem(with: body, task: spec.task, webhooks: webhooks) }
            let admitted: AdmittedRequest
            do throws(GatewayError) {
                admitted = try await admission.admit(application, for: call)
            } catch {
                throw restated?.renamed(error, for: spec) ?? error
            }
            let payload = Self.payload(admitted, body: body, api: api, baseURL: baseURL)
            let queued = try await admission.enqueue(admitted, as: payload, dialect: Self.jobDialect, on: jobs)
            // Waits up to `wait` for the job to end, then answers with its state; a job that cannot
            // be read back is answered as queued, with the id to fetch it by (an error without one
            // left the client no way to its job, charged all the same, but to retry it and pay twice).
            let job = await jobs.waitForEnd(of: queued.id, upTo: wait) ?? queued
            return Outcome(response: ModelsLabAnswer.job(job, baseURL: baseURL, fetchPath: api.fetchPath), queued: true)
        }
    }

    static let jobDialect = "modelslab"

    /// The body as fields: JSON or a form.
    static func fields(of request: HTTPRequest) -> Result<[String: JSONValue], GatewayError> {
        RequestBody.fields(request.body, contentType: request.headers["Content-Type"]).map { .success($0) } ?? .failure(.malformedBody)
    }

    /// The `key` field; an unreadable body is refused as such before any key is looked at.
    static func credentials(in body: Result<[String: JSONValue], GatewayError>) -> Result<String, GatewayError> {
        body.flatMap { $0["key"]?.text.map { .success($0) } ?? .failure(.invalidKey) }
    }

    /// What v3 refuses besides the catalog's fields: a safety checker (none is configured, so a
    /// request that asks for one is refused rather than served unchecked), a `track_id`, a webhook
    /// URL or an image-to-image `init_image` URL past its bound, and a webhook URL the address
    /// rules forbid.
    private static func problem(with body: [String: JSONValue], task: GenerationTask, webhooks: WebhookSender) async -> GatewayError? {
        if FieldCoercion.flag(body["safety_checker"]) == true {
            return .unavailableOption("safety_checker is not available on this gateway: no NSFW checker is configured; send \"no\"")
        }
        // All three are kept with the job and repeated in every fetch's answer and its webhook's
        // body: unbounded, one request of megabytes made each of a thousand fetches cost as much.
        if let trackID = body["track_id"]?.text, trackID.unicodeScalars.count > maxTrackIDLength {
            return .invalidFields(["track_id: must be at most \(maxTrackIDLength) characters, got \(trackID.unicodeScalars.count)"])
        }
        if task == .imageToImage, let source = imageURL(in: body), source.utf8.count > maxImageURLLength {
            return .invalidFields(["init_image: the URL must be at most \(maxImageURLLength) bytes, got \(source.utf8.count)"])
        }
        if let webhook = webhook(in: body), webhook.utf8.count > maxWebhookLength {
            return .invalidWebhook("webhook: the URL must be at most \(maxWebhookLength) bytes, got \(webhook.utf8.count)")
        }
        if let webhook = webhook(in: body), let problem = await webhooks.problem(with: webhook) {
            return problem.busy ? .unreadableRequest(.serviceUnavailable, "webhook: \(problem.message)") : .invalidWebhook(problem.message)
        }
        return nil
    }

    /// A client's own id for its job: room for a UUID, a database key or a short path.
    static let maxTrackIDLength = 256
    /// The most a URL is commonly allowed (browsers, proxies and CDNs cut at about 2 KB).
    static let maxWebhookLength = 2048
    /// The same for an input image's URL; base64 images are bounded by their size alone.
    static let maxImageURLLength = maxWebhookLength

    private static func webhook(in body: [String: JSONValue]) -> String? {
        body["webhook"]?.text.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `init_image` when it is a URL, the form `meta` repeats; base64 is not repeated.
    private static func imageURL(in body: [String: JSONValue]) -> String? {
        body["init_image"]?.text.flatMap { $0.hasPrefix("http") ? $0 : nil }
    }

    /// The job as stored. ModelsLab's own file names: `<file_prefix>-<i>.png`, or `.base64` files of
    /// base64 text. The bytes are those the backend produced (the file is served with their own
    /// content type).
    private static func payload(_ admitted: AdmittedRequest, body: [String: JSONValue], api: API, baseURL: String) -> GenerationJobPayload {
        let generation = admitted.generation
        let base64 = admitted.fields.boolean(.base64) ?? false
        let (prefix, files) = OutputStore.newNames(generation.samples, base64 ? .base64 : .png)
        var meta = meta(generation, body: body, api: api)
        meta["file_prefix"] = .string(prefix)
        return GenerationJobPayload(
            request: generation, files: files, base64: base64, webhook: webhook(in: body), trackID: body["track_id"]?.text,
            baseURL: baseURL, meta: meta, price: admitted.price, knownByPublicID: true)
    }

    /// What `meta` reports: the parameters the generation actually uses. Only what was checked is
    /// repeated from the body: `meta` goes out with every fetch and webhook of the job.
    static func meta(_ request: GenerationRequest, body: [String: JSONValue], api: API) -> [String: JSONValue] {
        var meta: [String: JSONValue] = [
            "prompt": .string(request.prompt), "negative_prompt": .string(request.negativePrompt ?? ""),
            "W": .integer(Int64(request.width)), "H": .integer(Int64(request.height)), "steps": .integer(Int64(request.steps)),
            "guidance_scale": .number(request.guidanceScale), "n_samples": .integer(Int64(request.samples)),
            "seed": .integer(Int64(clamping: request.seed)), "model": .string(request.model), "safety_checker": .string("no"),
            // Accepted for compatibility; the prompt is used as sent.
            "enhance_prompt": .string("no"),
        ]
        if let strength = request.strength, request.task == .imageToImage { meta["strength"] = .number(strength) }
        // A text-to-image request's `init_image` is never read, so never checked.
        if request.task == .imageToImage, let source = imageURL(in: body) { meta["init_image"] = .string(source) }
        // v6's `model_id` named the model that ran (an unknown one is refused); v3 reads none, so
        // it would repeat whatever was sent.
        if api == .v6, let modelID = body["model_id"]?.text { meta["model_id"] = .string(modelID) }
        return meta
    }

    // MARK: Fetch

    func fetch(_ request: HTTPRequest, id pathID: String?, api: API) async -> HTTPResponse {
        let body = Self.fields(of: request)
        return await admission.serveRead(Self.credentials(in: body), renderer: ModelsLabAnswer.renderer) { key throws(GatewayError) in
            guard let id = pathID ?? (try? body.get())?["request_id"]?.text else { throw .missingJobID }
            let job = try await admission.job(id, of: key, dialect: Self.jobDialect, on: jobs)
            return ModelsLabAnswer.job(job, baseURL: jobs.baseURL(host: request.headers["Host"]), fetchPath: api.fetchPath)
        }
    }
}
