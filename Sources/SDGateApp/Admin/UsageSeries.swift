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

    init(_ events: [UsageEvent], window: UsageWindow, step: Int64) {
        let first = window.from - window.from % step
        let count = Int((window.to - first + step - 1) / step)
        from = KeyReport.date(first)
        to = KeyReport.date(window.to)
        step_seconds = step / 1000
        buckets = (0..<count).map { KeyReport.date(first + Int64($0) * step) }
        func series(by group: (UsageEvent) -> String) -> [(String, [String], [Int])] {
            Dictionary(grouping: events, by: group).sorted { $0.key < $1.key }.map { name, events in
                var cost = [Credits](repeating: .zero, count: count), requests = [Int](repeating: 0, count: count)
                for event in events {
                    let index = Int((event.at - first) / step)
                    guard cost.indices.contains(index) else { continue }
                    cost[index] = cost[index] + event.cost
                    requests[index] += 1
                }
                return (name, cost.map(\.description), requests)
            }
        }
        by_key = series { $0.keyID }.map { KeySeries(key_id: $0.0, cost: $0.1, requests: $0.2) }
        by_model = series { $0.model }.map { ModelSeries(model: $0.0, cost: $0.1, requests: $0.2) }
    }
}
