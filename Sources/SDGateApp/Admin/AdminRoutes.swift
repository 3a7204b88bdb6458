import Foundation
import GenerationCore
import HTTPServer
import Ledger

/// The admin API under `/admin/`: keys, teams, credits and usage, for the holder of the admin token.
/// Member keys never reach it: every route checks `Authorization: Bearer <admin token>` from the
/// request head, before the body is read.
struct AdminRoutes: Sendable {
    let ledger: any Ledger
    /// SHA-256 of the one admin token accepted.
    let tokenHash: [UInt8]
    let now: @Sendable () -> Timestamp

    func register(on router: inout Router) {
        let check: Router.HeadCheck = { head, _ in
            authorized(head.headers) ? nil : Self.error(.unauthorized, "the admin API needs the admin token: Authorization: Bearer <token>")
        }
        router.add(.post, "/admin/keys", maxBodyBytes: 64 * 1024, checkHead: check) { request, _ in await createKey(request) }
        router.add(.get, "/admin/keys", checkHead: check) { _, _ in await listKeys() }
        router.add(.get, "/admin/keys/{id}", checkHead: check) { _, parameters in await showKey(parameters["id"] ?? "") }
        router.add(.post, "/admin/keys/{id}/credits", maxBodyBytes: 64 * 1024, checkHead: check) { request, parameters in
            await adjustCredits(request, id: parameters["id"] ?? "")
        }
        router.add(.post, "/admin/keys/{id}/revoke", checkHead: check) { _, parameters in await revokeKey(parameters["id"] ?? "") }
        router.add(.patch, "/admin/keys/{id}", maxBodyBytes: 64 * 1024, checkHead: check) { request, parameters in
            await setLimits(request, id: parameters["id"] ?? "")
        }
        router.add(.get, "/admin/usage", checkHead: check) { request, _ in await usage(request) }
        router.add(.get, "/admin/usage/series", checkHead: check) { request, _ in await usageSeries(request) }
        registerTeams(on: &router, checkHead: check)
    }

    private func authorized(_ headers: HTTPHeaders) -> Bool {
        BearerToken.matches(headers, hash: tokenHash)
    }

    // MARK: Handlers

    struct NewKeyBody: Decodable {
        let name: String
        let credits: String?
        let models: [String]?
        let rate_limit_per_minute: Int?
        let expires_in_days: Int?
        /// The team's id or name.
        let team: String?
    }

    private func createKey(_ request: HTTPRequest) async -> HTTPResponse {
        guard let body = try? JSONDecoder().decode(NewKeyBody.self, from: Data(request.body)), !body.name.isEmpty else {
            return Self.error(.unprocessableContent, "expected {\"name\": ..., \"credits\": \"10\", \"models\": [...], \"rate_limit_per_minute\": n, \"expires_in_days\": n, \"team\": id or name}")
        }
        let credits = body.credits.map { Credits(decimal: $0) }
        if let credits, credits == nil || credits! < .zero { return Self.error(.unprocessableContent, "credits: expected a decimal amount such as \"10\" or \"0.5\"") }
        return await answer(.created) {
            var teamID: String?
            if let reference = body.team {
                guard let team = try await ledger.team(idOrName: reference) else { throw LedgerError.unknownTeam(reference) }
                teamID = team.id
            }
            let (key, secret) = try await ledger.createKey(NewKey(
                name: body.name, expiresAt: body.expires_in_days.map { now() + Int64($0) * 86_400_000 },
                models: body.models, rateLimitPerMinute: body.rate_limit_per_minute, teamID: teamID))
            var balance = try await ledger.balance(keyID: key.id)
            if let amount = credits ?? nil, amount > .zero { balance = try await ledger.adjust(keyID: key.id, by: amount, reason: "initial credits") }
            return KeyReport(key, balance, secret: secret)
        }
    }

    private func listKeys() async -> HTTPResponse {
        await answer(.ok) {
            var reports: [KeyReport] = []
            for key in try await ledger.keys() { reports.append(KeyReport(key, try await ledger.balance(keyID: key.id))) }
            return reports
        }
    }

    private func showKey(_ id: String) async -> HTTPResponse {
        await answer(.ok) {
            guard let key = try await ledger.key(id: id) else { throw LedgerError.unknownKey(id) }
            return try await KeyReport.full(key, in: ledger)
        }
    }

    struct CreditsBody: Decodable {
        let amount: String
        let reason: String
    }

    /// `{"amount": "5", "reason": "..."}` adds credits; a negative amount deducts them.
    private func adjustCredits(_ request: HTTPRequest, id: String) async -> HTTPResponse {
        guard let body = try? JSONDecoder().decode(CreditsBody.self, from: Data(request.body)), let amount = Credits(decimal: body.amount),
              !body.reason.isEmpty else {
            return Self.error(.unprocessableContent, "expected {\"amount\": \"5\" (negative to deduct), \"reason\": \"...\"}")
        }
        return await answer(.ok) {
            let balance = try await ledger.adjust(keyID: id, by: amount, reason: body.reason)
            guard let key = try await ledger.key(id: id) else { throw LedgerError.unknownKey(id) }
            return KeyReport(key, balance)
        }
    }

    private func revokeKey(_ id: String) async -> HTTPResponse {
        await answer(.ok) {
            try await ledger.revoke(keyID: id)
            guard let key = try await ledger.key(id: id) else { throw LedgerError.unknownKey(id) }
            return KeyReport(key, try await ledger.balance(keyID: id))
        }
    }

    /// `{"models": [...], "rate_limit_per_minute": n, "expires_in_days": n}`: a field present
    /// replaces that limit, `null` removes it, an absent field keeps it.
    private func setLimits(_ request: HTTPRequest, id: String) async -> HTTPResponse {
        guard let body = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any] else {
            return Self.error(.unprocessableContent, "expected {\"models\": [...], \"rate_limit_per_minute\": n, \"expires_in_days\": n}; null removes a limit")
        }
        let models = body["models"], rate = body["rate_limit_per_minute"], days = body["expires_in_days"]
        if let models, !(models is NSNull || models is [String]) { return Self.error(.unprocessableContent, "models: expected a list of model names or null") }
        if let rate, !(rate is NSNull || (rate as? Int).map { $0 > 0 } == true) { return Self.error(.unprocessableContent, "rate_limit_per_minute: expected a positive whole number or null") }
        if let days, !(days is NSNull || (days as? Int).map { $0 > 0 } == true) { return Self.error(.unprocessableContent, "expires_in_days: expected a positive whole number or null") }
        return await answer(.ok) {
            guard let current = try await ledger.key(id: id) else { throw LedgerError.unknownKey(id) }
            let key = try await ledger.setLimits(
                keyID: id,
                models: models == nil ? current.models : models as? [String],
                rateLimitPerMinute: rate == nil ? current.rateLimitPerMinute : rate as? Int,
                expiresAt: days == nil ? current.expiresAt : (days as? Int).map { now() + Int64($0) * 86_400_000 })
            return KeyReport(key, try await ledger.balance(keyID: id))
        }
    }

    /// `?key=<id>&team=<id or name>&since=24h&until=...&limit=n` (default: every key, the last 24
    /// hours, every request). `limit` keeps the latest requests; the totals still count them all.
    private func usage(_ request: HTTPRequest) async -> HTTPResponse {
        let query = Self.query(request.head.query)
        var latest: Int?
        if let limit = query["limit"] {
            guard let value = Int(limit), value > 0 else { return Self.error(.unprocessableContent, "limit: expected a positive whole number") }
            latest = value
        }
        return await answer(.ok) { [latest] in
            let window = try UsageWindow(since: query["since"], until: query["until"], now: now())
            return UsageReport(try await usageEvents(query, window), window: window, latest: latest)
        }
    }

    /// `?since=7d&until=...&step=1h|1d`: what each key and each model spent in each step, for charts.
    private func usageSeries(_ request: HTTPRequest) async -> HTTPResponse {
        let query = Self.query(request.head.query)
        let steps: [String: Int64] = ["1h": 3_600_000, "1d": 86_400_000]
        guard let step = steps[query["step"] ?? "1h"] else { return Self.error(.unprocessableContent, "step: expected 1h or 1d") }
        return await answer(.ok) {
            let window = try UsageWindow(since: query["since"], until: query["until"], now: now())
            guard (window.to - window.from) / step < UsageSeries.maxBuckets else {
                throw UsageWindowError(message: "the period holds more than \(UsageSeries.maxBuckets) steps: choose a longer step")
            }
            return UsageSeries(try await usageEvents(query, window), window: window, step: step)
        }
    }

    /// The usage events of the query's key or team (by id or name) in the window.
    private func usageEvents(_ query: [String: String], _ window: UsageWindow) async throws -> [UsageEvent] {
        var teamID: String?
        if let reference = query["team"] {
            guard let team = try await ledger.team(idOrName: reference) else { throw LedgerError.unknownTeam(reference) }
            teamID = team.id
        }
        return try await ledger.usage(keyID: query["key"], teamID: teamID, from: window.from, to: window.to)
    }

    // MARK: Answers

    /// Runs `body` and answers with its value as JSON, or with the refusal of the ledger or of the period asked for.
    func answer(_ status: HTTPStatus, _ body: () async throws -> some Encodable) async -> HTTPResponse {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return .json(status, Array(try encoder.encode(try await body())))
        } catch let error as UsageWindowError {
            return Self.error(.unprocessableContent, error.description)
        } catch let error as LedgerError {
            switch error {
            case .unknownKey, .unknownTeam: return Self.error(.notFound, error.description)
            case .teamExists: return Self.error(.conflict, error.description)
            case .insufficientBalance, .invalidAmount: return Self.error(.unprocessableContent, error.description)
            default: return Self.error(.internalServerError, "the ledger failed")
            }
        } catch {
            return Self.error(.internalServerError, "the ledger failed")
        }
    }

    static func error(_ status: HTTPStatus, _ message: String) -> HTTPResponse {
        .json(status, Array((try? JSONEncoder().encode(["error": message])) ?? Data()))
    }

    static func query(_ text: Substring?) -> [String: String] {
        var values: [String: String] = [:]
        for pair in (text ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard let name = parts.first?.removingPercentEncoding else { continue }
            values[name] = parts.count > 1 ? String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding : ""
        }
        return values
    }
}
