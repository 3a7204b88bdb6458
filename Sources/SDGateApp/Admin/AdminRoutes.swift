import Foundation
import GenerationCore
import HTTPServer
import Ledger

/// The admin API under `/admin/`: keys, teams, credits and usage, for the holder of the admin token.
/// Member keys never reach it: every route checks `Authorization: Bearer <admin token>` from the
/// request head, before the body is read.
struct AdminRoutes: Sendable {
    let ledger: any GatewayStorage
    /// SHA-256 of the one admin token accepted.
    let tokenHash: [UInt8]
    let clock: any WallClock

    func register(on router: inout Router) {
        add(.post, "/admin/keys", maxBodyBytes: 64 * 1024, to: &router) { request, _ in await createKey(request) }
        add(.get, "/admin/keys", to: &router) { _, _ in await listKeys() }
        add(.get, "/admin/keys/{id}", to: &router) { _, parameters in await showKey(parameters["id"] ?? "") }
        add(.post, "/admin/keys/{id}/credits", maxBodyBytes: 64 * 1024, to: &router) { request, parameters in
            await adjustCredits(request, id: parameters["id"] ?? "")
        }
        add(.post, "/admin/keys/{id}/revoke", to: &router) { _, parameters in await revokeKey(parameters["id"] ?? "") }
        add(.patch, "/admin/keys/{id}", maxBodyBytes: 64 * 1024, to: &router) { request, parameters in
            await setLimits(request, id: parameters["id"] ?? "")
        }
        add(.put, "/admin/keys/{id}/budget", maxBodyBytes: 64 * 1024, to: &router) { request, parameters in
            await setKeyBudget(request, id: parameters["id"] ?? "")
        }
        add(.delete, "/admin/keys/{id}/budget", to: &router) { _, parameters in await setKeyBudget(nil, id: parameters["id"] ?? "") }
        add(.get, "/admin/usage", to: &router) { request, _ in await usage(request) }
        add(.get, "/admin/usage/series", to: &router) { request, _ in await usageSeries(request) }
        registerTeams(on: &router)
    }

    /// Adds a route of the admin API: the admin token is checked from the head, before the body is
    /// read, and every answer, a refusal too, says `Cache-Control: no-store`: they carry key
    /// secrets and the team's accounts, which no cache may keep.
    func add(_ method: HTTPMethod, _ pattern: String, maxBodyBytes: Int? = nil, to router: inout Router, _ handler: @escaping Router.Handler) {
        let check: Router.HeadCheck = { [self] head, _ in
            authorized(head.headers)
                ? nil : Self.noStore(Self.error(.unauthorized, "the admin API needs the admin token: Authorization: Bearer <token>"))
        }
        router.add(method, pattern, maxBodyBytes: maxBodyBytes, checkHead: check) { request, parameters in
            Self.noStore(await handler(request, parameters))
        }
    }

    private static func noStore(_ response: HTTPResponse) -> HTTPResponse {
        var response = response
        response.headers.set("Cache-Control", "no-store")
        return response
    }

    private func authorized(_ headers: HTTPHeaders) -> Bool {
        BearerToken.matches(headers, hash: tokenHash)
    }

    // MARK: Handlers

    private func createKey(_ request: HTTPRequest) async -> HTTPResponse {
        await answer(.created, with: AdminInput.newKey(request.body)) { body in
            var teamID: String?
            if let reference = body.team {
                guard let team = try await ledger.team(idOrName: reference) else { throw LedgerError.unknownTeam(reference) }
                teamID = team.id
            }
            let (key, secret) = try await ledger.createKey(
                NewKey(
                    name: body.name, expiresAt: body.lifetimeDays.map { KeyLimits.expiry(days: $0, from: clock.millisecondsNow) },
                    models: body.models, rateLimitPerMinute: body.rateLimitPerMinute, teamID: teamID))
            var balance = try await ledger.balance(of: .key(key.id))
            if let amount = body.credits, amount > .zero { balance = try await ledger.adjust(.key(key.id), by: amount, reason: "initial credits") }
            return KeyReport(key, balance, secret: secret)
        }
    }

    private func listKeys() async -> HTTPResponse {
        await answer(.ok) {
            var reports: [KeyReport] = []
            for key in try await ledger.keys() { reports.append(KeyReport(key, try await ledger.balance(of: .key(key.id)))) }
            return reports
        }
    }

    private func showKey(_ id: String) async -> HTTPResponse {
        await answer(.ok) {
            guard let key = try await ledger.key(id: id) else { throw LedgerError.unknownKey(id) }
            return try await KeyReport.full(key, in: ledger)
        }
    }

    /// `{"amount": "5", "reason": "..."}` adds credits; a negative amount deducts them.
    private func adjustCredits(_ request: HTTPRequest, id: String) async -> HTTPResponse {
        await answer(.ok, with: AdminInput.adjustment(request.body)) { body in
            let balance = try await ledger.adjust(.key(id), by: body.amount, reason: body.reason)
            guard let key = try await ledger.key(id: id) else { throw LedgerError.unknownKey(id) }
            return KeyReport(key, balance)
        }
    }

    private func revokeKey(_ id: String) async -> HTTPResponse {
        await answer(.ok) {
            try await ledger.revoke(keyID: id)
            guard let key = try await ledger.key(id: id) else { throw LedgerError.unknownKey(id) }
            return KeyReport(key, try await ledger.balance(of: .key(id)))
        }
    }

    /// `{"models": [...], "rate_limit_per_minute": n, "expires_in_days": n}`: a field present
    /// replaces that limit, `null` removes it, an absent field keeps it.
    private func setLimits(_ request: HTTPRequest, id: String) async -> HTTPResponse {
        await answer(.ok, with: AdminInput.limits(request.body)) { limits in
            guard let current = try await ledger.key(id: id) else { throw LedgerError.unknownKey(id) }
            let expiresAt: Timestamp? =
                switch limits.lifetimeDays {
                case .keep: current.expiresAt
                case .remove: nil
                case .set(let days): KeyLimits.expiry(days: days, from: clock.millisecondsNow)
                }
            let key = try await ledger.setLimits(
                keyID: id, models: limits.models.applied(to: current.models),
                rateLimitPerMinute: limits.rateLimitPerMinute.applied(to: current.rateLimitPerMinute), expiresAt: expiresAt)
            return KeyReport(key, try await ledger.balance(of: .key(id)))
        }
    }

    /// `?key=<id>&team=<id or name>&since=24h&until=...&limit=n` (default: every key, the last 24
    /// hours, the latest `UsageReport.maxRequests` rows). `limit` keeps fewer; the totals still
    /// count them all. `&by=day|week|month&time_zone=...` adds the totals of each calendar period.
    private func usage(_ request: HTTPRequest) async -> HTTPResponse {
        let query: [String: String]
        do {
            query = try Self.query(request.head.query)
        } catch {
            return Self.error(.unprocessableContent, error.description)
        }
        var latest = UsageReport.maxRequests
        if let limit = query["limit"] {
            guard let value = Int(limit), (1...UsageReport.maxRequests).contains(value) else {
                return Self.error(.unprocessableContent, "limit: expected a whole number from 1 to \(UsageReport.maxRequests)")
            }
            latest = value
        }
        return await offTheLoop {
            await answer(.ok) { [latest] in
                let window = try UsageWindow(since: query["since"], until: query["until"], now: clock.millisecondsNow)
                let grouping = try UsagePeriods.grouping(query, over: window), scope = try await usageScope(query, window)
                var report = try await UsageReport.read(from: ledger, scope: scope, window: window, latest: latest)
                if let (period, timeZone) = grouping {
                    report.by_period = try await UsagePeriods.read(from: ledger, scope: scope, per: period, timeZone: timeZone)
                }
                return report
            }
        }
    }

    /// `?since=7d&until=...&step=1h|1d`: what each key and each model spent in each step, for charts.
    private func usageSeries(_ request: HTTPRequest) async -> HTTPResponse {
        let query: [String: String]
        do {
            query = try Self.query(request.head.query)
        } catch {
            return Self.error(.unprocessableContent, error.description)
        }
        let steps: [String: Int64] = ["1h": 3_600_000, "1d": 86_400_000]
        guard let step = steps[query["step"] ?? "1h"] else { return Self.error(.unprocessableContent, "step: expected 1h or 1d") }
        return await offTheLoop {
            await answer(.ok) {
                let window = try UsageWindow(since: query["since"], until: query["until"], now: clock.millisecondsNow)
                guard (window.to - window.from) / step < UsageSeries.maxBuckets else {
                    throw UsageWindowError(message: "the period holds more than \(UsageSeries.maxBuckets) steps: choose a longer step")
                }
                return try await UsageSeries.read(from: ledger, scope: try await usageScope(query, window), step: step)
            }
        }
    }

    /// The query's key or team (by id or name) in the window.
    private func usageScope(_ query: [String: String], _ window: UsageWindow) async throws -> UsageScope {
        var teamID: String?
        if let reference = query["team"] {
            guard let team = try await ledger.team(idOrName: reference) else { throw LedgerError.unknownTeam(reference) }
            teamID = team.id
        }
        return window.scope(keyID: query["key"], teamID: teamID)
    }

    /// Runs a usage report on a thread of Swift's pool rather than the request's event loop: the
    /// store sums every event of the window, which for a busy one takes a while, and the loop's other
    /// connections (`/health` among them) would wait for it.
    private func offTheLoop(_ body: () async -> HTTPResponse) async -> HTTPResponse {
        await withTaskExecutorPreference(globalConcurrentExecutor) { await body() }
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
            case .unknownTimeZone: return Self.error(.unprocessableContent, "time_zone: \(error.description)")
            case .teamExists: return Self.error(.conflict, error.description)
            case .insufficientBalance, .invalidAmount, .exceedsMaximum: return Self.error(.unprocessableContent, error.description)
            default: return Self.error(.internalServerError, "the ledger failed")
            }
        } catch {
            return Self.error(.internalServerError, "the ledger failed")
        }
    }

    /// Answers 422 naming the field an admin got wrong, or runs `body` on the checked input.
    func answer<Input>(
        _ status: HTTPStatus, with input: Result<Input, AdminInput.Problem>,
        _ body: (Input) async throws -> some Encodable
    ) async -> HTTPResponse {
        switch input {
        case .success(let input): await answer(status) { try await body(input) }
        case .failure(let problem): Self.error(.unprocessableContent, problem.message)
        }
    }

    static func error(_ status: HTTPStatus, _ message: String) -> HTTPResponse {
        .json(status, Array((try? JSONEncoder().encode(["error": message])) ?? Data()))
    }

    /// The query's parameters, decoded. A malformed percent escape is refused, naming its
    /// parameter: dropped, it took a filter with it, and `?team=%ZZ` reported the whole gateway.
    static func query(_ text: Substring?) throws(UsageWindowError) -> [String: String] {
        var values: [String: String] = [:]
        for pair in (text ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = PercentDecoding.decode(parts[0].utf8, plusIsSpace: true) else {
                throw UsageWindowError(message: "query: a parameter's name has a malformed percent escape: '\(parts[0])'")
            }
            let raw = parts.count > 1 ? String(parts[1]) : ""
            guard let value = PercentDecoding.decode(raw.utf8, plusIsSpace: true) else {
                throw UsageWindowError(message: "\(name): malformed percent escape in '\(raw)'")
            }
            values[name] = value
        }
        return values
    }
}
