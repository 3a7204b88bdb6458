import CoreMetrics
import GenerationCore

/// The series the ledger records as it settles generations and voids expired holds, into the
/// application's metrics factory (`GET /metrics` shows them with the rest).
struct UsageMetrics: Sendable {
    let factory: any MetricsFactory

    /// One generation request as its usage is recorded: what it was answered, charged and released.
    func generationRecorded(_ usage: GenerationUsage) {
        let model = [("model", usage.model)]
        Counter(label: "sdgate_generations_total", dimensions: model + [("status", String(usage.status))], factory: factory).increment()
        if usage.status == 200 {
            Timer(label: "sdgate_generation_duration_seconds", dimensions: model, factory: factory)
                .recordNanoseconds(usage.duration.wholeNanoseconds)
        }
        if usage.cost > .zero {
            FloatingPointCounter(label: "sdgate_credits_charged_total", dimensions: model, factory: factory).increment(by: usage.cost.asDouble)
        }
        if usage.held > usage.cost {
            FloatingPointCounter(label: "sdgate_credits_refunded_total", dimensions: model, factory: factory)
                .increment(by: (usage.held - usage.cost).asDouble)
        }
        // The upstream's own unit (Segmind: US dollars); a figure it did not send is not guessed,
        // and one no call could cost (`inf`, `1e300`) is not added: the total would stay so for good.
        if let upstream = usage.upstream, let cost = upstream.cost.flatMap(Double.init), cost > 0, cost <= Self.maxUpstreamCost {
            FloatingPointCounter(label: "sdgate_upstream_cost_total", dimensions: [("upstream", upstream.name)], factory: factory)
                .increment(by: cost)
        }
    }

    /// The most one upstream call is taken to cost, in the upstream's unit.
    static let maxUpstreamCost = 1_000_000.0

    /// The reaper voided holds whose requests never settled (a crash, a lost database connection).
    func holdsExpired(_ count: Int) {
        Counter(label: "sdgate_holds_expired_total", factory: factory).increment(by: count)
    }
}
