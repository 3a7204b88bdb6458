import Crypto
public import GenerationCore
public import HTTPServer

/// One authenticated call as the work behind it sees it.
public struct Call: Sendable {
    public let key: AuthenticatedKey
    /// The request's claim of its `Idempotency-Key`, when it sent one, once claimed.
    public var idempotency: IdempotencyTicket? = nil
    /// The catalog model the call is for, as its usage is recorded (nil: not a known model).
    let model: String?
    /// The API the call came in through, as its usage is recorded (`segmind`, `modelslab`, ...).
    let dialect: String
    let requestID: String
    let start: ContinuousClock.Instant

    /// The usage event of `outcome`, had the call ended with it.
    func usage(of outcome: Outcome) -> GenerationUsage {
        GenerationUsage(
            keyID: key.id, model: model ?? "", dialect: dialect, status: outcome.reportedStatus.code, cost: outcome.charged,
            held: outcome.held, duration: .now - start, requestID: requestID, upstream: outcome.upstream)
    }
}

/// What a call produced: its answer, and what the one place that meters calls needs to know.
public struct Outcome: Sendable {
    public var response: HTTPResponse
    /// The status the usage report records: the answer's, or the refusal's for a dialect that
    /// answers every refusal with 200.
    public var reportedStatus: HTTPStatus
    public var charged: Credits = .zero
    public var held: Credits = .zero
    /// The credits left, when the answer already knows them.
    public var remaining: Credits?
    public var upstream: UpstreamReport?
    /// Queued as a job, which records its own usage when it ends.
    public var queued = false
    /// The usage event went to the ledger with the charge.
    public var usageRecorded = false

    public init(response: HTTPResponse, remaining: Credits? = nil, queued: Bool = false) {
        self.response = response
        self.reportedStatus = response.status
        self.remaining = remaining
        self.queued = queued
    }

    init(refusal: GatewayError, renderer: some DialectRenderer) {
        self.init(response: renderer.render(refusal))
        reportedStatus = refusal.status
    }
}

/// A request's `Idempotency-Key` and what makes the request the same request.
public struct IdempotencyClaim: Sendable {
    public let key: String
    let fingerprint: [UInt8]

    /// - Parameter route: the method and the route the request took, which is part of its identity.
    public init(key: String, route: String, body: [UInt8]) {
        self.key = key
        var hasher = SHA256()
        hasher.update(data: Array("\(route)\n".utf8))
        hasher.update(data: body)
        fingerprint = Array(hasher.finalize())
    }
}

extension Admission {
    /// The one error boundary of a generation call: authenticates the key, applies its rate, claims
    /// its `Idempotency-Key`, runs `work`, and answers a `GatewayError` from any step through the
    /// dialect's renderer. Every answer to an authenticated key carries `x-remaining-credits`, and
    /// every call to a known model that is not a queued job is recorded in the usage report here
    /// (a job records its own when it ends; a charge records its own with the charge).
    /// - Parameter dialect: the API the call came in through, named in its usage event; required,
    ///   so that no dialect's calls are metered without it.
    public func serve(
        _ apiKey: Result<String, GatewayError>, model: String, request: HTTPRequest, renderer: some DialectRenderer,
        dialect: String, idempotency: IdempotencyClaim? = nil,
        work: @Sendable (Call) async throws(GatewayError) -> Outcome
    ) async -> HTTPResponse {
        await callsInFlight.run {
            await RequestExecutor.$preferred.withValue(request.loopExecutor) {
                await serveCall(apiKey, model: model, request: request, renderer: renderer, dialect: dialect, idempotency: idempotency, work: work)
            }
        }
    }

    private func serveCall(
        _ apiKey: Result<String, GatewayError>, model: String, request: HTTPRequest, renderer: some DialectRenderer,
        dialect: String, idempotency: IdempotencyClaim?, work: @Sendable (Call) async throws(GatewayError) -> Outcome
    ) async -> HTTPResponse {
        let key: AuthenticatedKey
        switch await authenticate(apiKey) {
        case .success(let authenticated): key = authenticated
        case .failure(let error): return renderer.render(error)
        }
        let call = Call(
            key: key, model: catalog[model] == nil ? nil : model, dialect: dialect,
            requestID: request.headers["x-request-id"] ?? "", start: .now)
        var outcome: Outcome
        do throws(GatewayError) {
            try await checkRate(of: key)
            if let idempotency {
                outcome = try await once(idempotency, call: call, work: work)
            } else {
                outcome = try await work(call)
            }
        } catch {
            outcome = Outcome(refusal: error, renderer: renderer)
        }
        if outcome.remaining == nil { outcome.remaining = await gate.remaining(for: key) }
        if let remaining = outcome.remaining { outcome.response.headers.set("x-remaining-credits", remaining.description) }
        if call.model != nil && !outcome.queued && !outcome.usageRecorded { await gate.recordUsage(call.usage(of: outcome)) }
        return outcome.response
    }

    /// The boundary of a call that only reads (a job's state): authenticates, runs `work`, renders
    /// a refusal, and shows the key's credits.
    public func serveRead(
        _ apiKey: Result<String, GatewayError>, renderer: some DialectRenderer,
        work: @Sendable (AuthenticatedKey) async throws(GatewayError) -> HTTPResponse
    ) async -> HTTPResponse {
        let key: AuthenticatedKey
        switch await authenticate(apiKey) {
        case .success(let authenticated): key = authenticated
        case .failure(let error): return renderer.render(error)
        }
        var response: HTTPResponse
        do throws(GatewayError) {
            response = try await work(key)
        } catch {
            response = renderer.render(error)
        }
        if let remaining = await gate.remaining(for: key) { response.headers.set("x-remaining-credits", remaining.description) }
        return response
    }

    /// The key's identity if it is known, unrevoked and unexpired.
    public func authenticate(_ apiKey: Result<String, GatewayError>) async -> Result<AuthenticatedKey, GatewayError> {
        switch apiKey {
        case .failure(let error): return .failure(error)
        case .success(let apiKey): return await gate.authenticate(apiKey: apiKey).map { .success($0) } ?? .failure(.invalidKey)
        }
    }

    /// A key without a limit costs nothing here: the limiter (and its database) is not asked.
    private func checkRate(of key: AuthenticatedKey) async throws(GatewayError) {
        guard let limit = key.rateLimitPerMinute, case .limited(let wait) = await rateLimiter.check(key: key.id, perMinute: limit) else { return }
        throw .rateLimited(retryAfter: wait, resetAt: rateLimiter.now() + wait)
    }

    /// `Idempotency-Key`: a repeat of the same request gets the first answer and no second charge;
    /// the same key with another request is refused. Only 200 answers are kept: a failure charged
    /// nothing, and its repeat runs again. The answer is kept even if the client left before it
    /// came (the work was charged): its retry gets it. A claim whose request died with its gateway
    /// ends with the request's hold (`admit` backs the claim with it), and a retry then runs afresh.
    private func once(
        _ idempotency: IdempotencyClaim, call: Call,
        work: @Sendable (Call) async throws(GatewayError) -> Outcome
    ) async throws(GatewayError) -> Outcome {
        guard !idempotency.key.isEmpty, idempotency.key.utf8.count <= 255 else { throw .invalidIdempotencyKey }
        switch await gate.claimIdempotency(idempotency.key, fingerprint: idempotency.fingerprint, for: call.key) {
        case .replay(let answer):
            var response = HTTPResponse(replaying: answer)
            response.headers.set("x-idempotent-replayed", "true")
            return Outcome(response: response)
        case .inProgress: throw .idempotencyInProgress
        case .mismatch: throw .idempotencyMismatch
        case .unavailable: throw .idempotencyUnavailable
        case .proceed(let ticket):
            var claimed = call
            claimed.idempotency = ticket
            let result: Result<Outcome, GatewayError>
            do throws(GatewayError) {
                result = .success(try await work(claimed))
            } catch {
                result = .failure(error)
            }
            let answer = try? result.get().response
            await uncancelled { [gate] in
                if let answer, answer.status == .ok, let kept = StoredAnswer(keeping: answer) {
                    await gate.completeIdempotency(ticket, for: call.key, answer: kept)
                } else {
                    await gate.releaseIdempotency(ticket, for: call.key)
                }
            }
            return try result.get()
        }
    }
}

extension StoredAnswer {
    /// An answer as a repeat of its request will get it, without its remaining credits (they
    /// change, and are added afresh to each replay); nil for a streamed body, which is never kept.
    init?(keeping response: HTTPResponse) {
        guard case .bytes(let body) = response.body else { return nil }
        let headers = response.headers.filter { !$0.name.lowercased().hasPrefix("x-remaining-credits") }.map { [$0.name, $0.value] }
        self.init(status: response.status.code, headers: headers, body: body)
    }
}

extension HTTPResponse {
    init(replaying answer: StoredAnswer) {
        var headers = HTTPHeaders()
        for pair in answer.headers where pair.count == 2 { headers.add(pair[0], pair[1]) }
        self.init(status: HTTPStatus(code: answer.status), headers: headers, bytes: answer.body)
    }
}
