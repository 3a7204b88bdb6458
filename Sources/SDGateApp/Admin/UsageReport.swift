import Foundation
import GenerationCore
package import Ledger

/// Generation requests and what they cost, with totals overall, per key and per dialect: what
/// `sdgate usage` prints and `/admin/usage` answers.
package struct UsageReport: Encodable, Sendable {
    /// `dialect`: the API the request came in through (empty for requests recorded before it was
    /// kept). `upstream_cost` and `upstream_remaining_credits`: what the upstream (`backend`)
    /// reported for a proxied request, in its own unit, beside what the member was charged (`cost`).
    /// `requests`: 1, or with `counted`, how many requests that held nothing (refusals, replays)
    /// the key made of the model through the dialect with that status in the minute from `at`.
    struct Request: Encodable {
        let key_id: String, model: String, dialect: String, status: Int, cost: String, duration_ms: Int64, backend: String
        let request_id: String, at: String
        let upstream_cost: String?, upstream_remaining_credits: String?
        let requests: Int, counted: Bool
    }

    struct KeyTotal: Encodable {
        let key_id: String, requests: Int, cost: String
    }

    /// What came in through one dialect, and what it cost.
    struct DialectTotal: Encodable {
        let dialect: String, requests: Int, cost: String
    }

    let from: String
    let to: String
    let requests: [Request]
    let total_requests: Int
    let total_cost: String
    let by_key: [KeyTotal]
    let by_dialect: [DialectTotal]
    /// With `?by=day|week|month`: the totals of each calendar period.
    var by_period: UsagePeriods?

    /// The most rows one report lists, and how many it lists unless asked for fewer: the latest. A
    /// window may hold millions; the totals count them all (a counted row as its requests).
    package static let maxRequests = 1000

    /// The report of `scope`: its latest `latest` requests (at most `maxRequests`) and the totals of
    /// all of them, which the store sums without reading them here.
    package static func read(
        from ledger: some UsageStore, scope: UsageScope, window: UsageWindow, latest: Int = maxRequests
    ) async throws(LedgerError) -> UsageReport {
        let events = try await ledger.usage(scope, latest: min(latest, maxRequests))
        let totals = try await ledger.usageTotals(scope, by: [.key, .dialect], cuts: [])
        return UsageReport(latest: events, totals: totals, window: window)
    }

    init(latest events: [UsageEvent], totals: [UsageTotal], window: UsageWindow) {
        from = KeyReport.date(window.from)
        to = KeyReport.date(window.to)
        requests = events.map {
            Request(
                key_id: $0.keyID, model: $0.model, dialect: $0.dialect, status: $0.status, cost: $0.cost.description,
                duration_ms: $0.durationMilliseconds, backend: $0.backend, request_id: $0.requestID, at: KeyReport.date($0.at),
                upstream_cost: $0.upstreamCost, upstream_remaining_credits: $0.upstreamRemainingCredits, requests: $0.requests,
                counted: $0.counted)
        }
        let sum = UsageSum(totals)
        total_requests = sum.requests
        total_cost = sum.cost
        by_key = Dictionary(grouping: totals) { $0.keyID ?? "" }.sorted { $0.key < $1.key }.map { key, totals in
            let sum = UsageSum(totals)
            return KeyTotal(key_id: key, requests: sum.requests, cost: sum.cost)
        }
        by_dialect = Dictionary(grouping: totals) { $0.dialect ?? "" }.sorted { $0.key < $1.key }.map { dialect, totals in
            let sum = UsageSum(totals)
            return DialectTotal(dialect: dialect, requests: sum.requests, cost: sum.cost)
        }
    }

    package var text: String {
        let lines = requests.map { row in
            let head = "\(row.at)  \(row.key_id)  \(row.model)  \(Self.named(row.dialect))  \(row.status)  \(row.cost)"
            if row.counted { return head + "  \(row.requests) \(row.requests == 1 ? "request" : "requests") in the minute" }
            let upstream = row.upstream_cost.map { "  (\(row.backend) charged \($0))" } ?? ""
            return head + "\(upstream)  \(row.duration_ms) ms  \(row.request_id)"
        }
        let perKey = by_key.map { "  \($0.key_id): \($0.requests) requests, \($0.cost) credits" }
        let perDialect = by_dialect.map { "  via \(Self.named($0.dialect)): \($0.requests) requests, \($0.cost) credits" }
        return (lines + ["\(total_requests) requests, \(total_cost) credits, \(from) to \(to)"] + perKey + perDialect)
            .joined(separator: "\n")
    }

    /// A dialect in the text, where an unknown one (a request recorded before dialects were) still
    /// takes its column.
    private static func named(_ dialect: String) -> String {
        dialect.isEmpty ? "-" : dialect
    }
}

/// The requests of some totals and their cost, as a report writes it: exact, however far past
/// what one `Credits` holds.
struct UsageSum {
    let requests: Int
    let cost: String

    init(_ totals: some Sequence<UsageTotal>) {
        requests = totals.reduce(0) { $0 + $1.requests }
        cost = Credits.description(microCredits: totals.reduce(0) { $0 + $1.microCredits })
    }
}

/// The time range of a usage report. `since` and `until` are either a time back from now (`30m`,
/// `24h`, `7d`) or a moment (`2026-11-01`, `2026-11-01T12:00:00Z`); by default the last 24 hours.
package struct UsageWindow: Sendable {
    package let from: Timestamp
    package let to: Timestamp

    /// The events of the window, of one key, of a team's keys, or (both nil) of every key.
    package func scope(keyID: String?, teamID: String?) -> UsageScope {
        UsageScope(keyID: keyID, teamID: teamID, from: from, to: to)
    }

    package init(since: String?, until: String?, now: Timestamp) throws(UsageWindowError) {
        from = try since.map { text throws(UsageWindowError) in try Self.moment(text, now: now) } ?? now - 86_400_000
        // Up to and including now.
        to = try until.map { text throws(UsageWindowError) in try Self.moment(text, now: now) } ?? now + 1
        guard from < to else { throw UsageWindowError(message: "the start of the period must come before its end") }
    }

    /// How far back a period may reach: a hundred years (checked before the arithmetic on it).
    static let longestLookBack: Int64 = 36_500 * 86_400_000
    /// Moments are read between 1970 and the year 9999.
    static let moments: ClosedRange<Timestamp> = 0...253_402_300_799_999

    private static func moment(_ text: String, now: Timestamp) throws(UsageWindowError) -> Timestamp {
        let units: [Character: Int64] = ["m": 60_000, "h": 3_600_000, "d": 86_400_000]
        if let suffix = text.last, let unit = units[suffix], let count = Int64(text.dropLast()), count >= 0 {
            guard count <= longestLookBack / unit else {
                throw UsageWindowError(message: "'\(text)': a period reaches back at most \(longestLookBack / unit)\(suffix)")
            }
            return now - count * unit
        }
        let withTime = ISO8601DateFormatter()
        let dateOnly = ISO8601DateFormatter()
        dateOnly.formatOptions = [.withFullDate]
        guard let date = withTime.date(from: text) ?? dateOnly.date(from: text) else {
            throw UsageWindowError(
                message: "'\(text)': expected a time back from now such as 30m, 24h or 7d, or a date such as 2026-11-01 or 2026-11-01T12:00:00Z")
        }
        let milliseconds = date.timeIntervalSince1970 * 1000
        guard milliseconds.isFinite, Double(moments.lowerBound)...Double(moments.upperBound) ~= milliseconds else {
            throw UsageWindowError(message: "'\(text)': expected a date between 1970 and 9999")
        }
        return Timestamp(milliseconds)
    }
}

package struct UsageWindowError: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}
