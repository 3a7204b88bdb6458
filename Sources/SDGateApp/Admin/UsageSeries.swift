import GenerationCore
import Ledger

/// Spend over time for the admin page's charts: a period cut into equal steps (whole hours or days
/// in UTC), and for each key and each model what it spent in every step. Dense lists, aligned with
/// `buckets`, so a chart needs no arithmetic on dates.
struct UsageSeries: Encodable, Sendable {
    struct KeySeries: Encodable {
        let key_id: String
        let cost: [String]
        let requests: [Int]
    }

    struct ModelSeries: Encodable {
        let model: String
        let cost: [String]
        let requests: [Int]
    }

    let from: String
    let to: String
    let step_seconds: Int64
    /// Each step's start.
    let buckets: [String]
    let by_key: [KeySeries]
    let by_model: [ModelSeries]

    /// The most steps one answer may have: a chart shows no more, and a client cannot make the
    /// gateway build an answer without bound.
    static let maxBuckets = 1000

    /// What each key and each model of `scope` spent in each step, summed by the store.
    static func read(from ledger: some UsageStore, scope: UsageScope, step: Int64) async throws(LedgerError) -> UsageSeries {
        let first = scope.from - scope.from % step
        let count = Int((scope.to - first + step - 1) / step)
        let cuts = (1..<max(count, 1)).map { first + Int64($0) * step }
        func series(_ totals: [UsageTotal], by name: (UsageTotal) -> String?) -> [(String, [String], [Int])] {
            Dictionary(grouping: totals) { name($0) ?? "" }.sorted { $0.key < $1.key }.map { name, totals in
                var cost = [Int128](repeating: 0, count: count), requests = [Int](repeating: 0, count: count)
                for total in totals where cost.indices.contains(total.bucket) {
                    cost[total.bucket] += total.microCredits
                    requests[total.bucket] += total.requests
                }
                return (name, cost.map { Credits.description(microCredits: $0) }, requests)
            }
        }
        let byKey = try await ledger.usageTotals(scope, by: .key, cuts: cuts)
        let byModel = try await ledger.usageTotals(scope, by: .model, cuts: cuts)
        return UsageSeries(
            from: KeyReport.date(first), to: KeyReport.date(scope.to), step_seconds: step / 1000,
            buckets: (0..<count).map { KeyReport.date(first + Int64($0) * step) },
            by_key: series(byKey, by: \.keyID).map { KeySeries(key_id: $0.0, cost: $0.1, requests: $0.2) },
            by_model: series(byModel, by: \.model).map { ModelSeries(model: $0.0, cost: $0.1, requests: $0.2) })
    }
}
