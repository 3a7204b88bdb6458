import CoreMetrics
import Jobs
import Ledger
import Synchronization

/// The alerts' series: `sdgate_alerts_total{type}` (alerts queued, each once however many
/// receivers), `sdgate_alert_attempts_total{outcome}` (attempts at delivering one to a receiver:
/// `delivered` or `failed`) and `sdgate_alert_subjects{kind,state}` (the watched subjects in each
/// state, read from the database at each scrape). Labels are fixed sets: alert types, subject kinds,
/// and states named by the configured thresholds; never a key, a team or a URL.
extension GatewayMetrics {
    func alertQueued(_ event: AlertEvent) {
        Counter(label: "sdgate_alerts_total", dimensions: [("type", event.kind.rawValue)], factory: factory).increment()
    }

    func alertAttempt(delivered: Bool) {
        Counter(label: "sdgate_alert_attempts_total", dimensions: [("outcome", delivered ? "delivered" : "failed")], factory: factory).increment()
    }

    /// The subjects in each state, as the database counts them; a state no subject is in any more
    /// shows 0.
    func alertSubjects(_ counts: [AlertStateCount], thresholds: [Int]) {
        var shown: [AlertSeries: Int] = [:]
        for count in counts {
            shown[AlertSeries(kind: count.kind, state: Self.state(of: count, thresholds: thresholds)), default: 0] += count.count
        }
        let all = alertSeries.withLock { known in
            known.formUnion(shown.keys)
            return known
        }
        for series in all {
            Gauge(label: "sdgate_alert_subjects", dimensions: [("kind", series.kind), ("state", series.state)], factory: factory)
                .record(shown[series] ?? 0)
        }
    }

    /// `below` or the highest threshold reached for a measure; `up`/`down`, `ok`/`low` for the rest.
    private static func state(of count: AlertStateCount, thresholds: [Int]) -> String {
        switch count.kind {
        case "upstream", "worker": count.level > 0 ? "down" : "up"
        case "upstream-credits": count.level > 0 ? "low" : "ok"
        // A level past the thresholds there are now (they were changed) is the highest of them.
        default: count.level > 0 && !thresholds.isEmpty ? String(thresholds[min(count.level, thresholds.count) - 1]) : "below"
        }
    }
}

struct AlertSeries: Hashable {
    let kind: String
    let state: String
}
