package import CoreMetrics
import GatewayAPI
import GenerationCore
import HTTPServer
import Prometheus
import Synchronization

/// The gateway's metrics, recorded through swift-metrics into one Prometheus registry per
/// application and exposed at `GET /metrics`. The parts below the application (the upstream proxy,
/// the local worker pool) record into `factory`; the application records what it sees itself here.
///
/// Labels are bounded sets only: route patterns (never raw paths, which carry ids), catalog model
/// names, status codes, configured upstream names and error kinds. Never a key, a prompt or a path.
/// The series are documented in docs/operations.md ("Metrics"); this file is their one list of names.
package final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    /// What the parts record into.
    package let factory: any MetricsFactory

    /// Histogram buckets for every duration: from a cached answer (5 ms) to a slow generation (5 min).
    static let durationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        .seconds(120), .seconds(300),
    ]

    package init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        self.factory = factory
    }

    /// The Prometheus text exposition of every series.
    func exposition() -> [UInt8] {
        logDrops.withLock { drops in
            guard let (lines, reported) = drops else { return }
            let total = lines()
            if total > reported { Counter(label: Self.logDropsLabel, factory: factory).increment(by: Int64(total - reported)) }
            drops = (lines, max(total, reported))
        }
        return registry.emitToBuffer()
    }

    // MARK: The log

    private static let logDropsLabel = "sdgate_log_lines_dropped_total"
    /// The log's count of dropped lines and how many of them the counter shows: read when the
    /// metrics are, since a log whose output is blocked cannot report anything itself.
    private let logDrops = Mutex<(lines: @Sendable () -> Int, reported: Int)?>(nil)

    /// Counts the lines the log dropped (`droppedLines`) in `sdgate_log_lines_dropped_total`.
    package func countLogDrops(_ droppedLines: @escaping @Sendable () -> Int) {
        Counter(label: Self.logDropsLabel, factory: factory).increment(by: 0)
        logDrops.withLock { $0 = (droppedLines, 0) }
    }

    // MARK: Requests

    /// One HTTP request answered, by its route pattern (`unmatched` for none).
    func requestAnswered(method: HTTPMethod, route: String, status: HTTPStatus, duration: Duration) {
        let series = RequestSeries(method: Self.label(of: method), route: route, status: status.code)
        let (requests, durations) = requestSeries.withLock { made in
            if let series = made[series] { return series }
            let new = (
                Counter(
                    label: "sdgate_http_requests_total",
                    dimensions: [("method", series.method), ("route", route), ("status", String(series.status))], factory: factory),
                Timer(label: "sdgate_http_request_duration_seconds", dimensions: [("method", series.method), ("route", route)], factory: factory)
            )
            made[series] = new
            return new
        }
        requests.increment()
        durations.recordNanoseconds(duration.wholeNanoseconds)
    }

    /// A method is any token: only the standard ones are labels of their own (the rest are
    /// `other`), so that no client can make series without end, nor access log lines of kilobytes.
    private static let standardMethods: Set<HTTPMethod> = [.get, .head, .post, .put, .patch, .delete, .options]

    static func label(of method: HTTPMethod) -> String { standardMethods.contains(method) ? method.rawValue : "other" }

    private struct RequestSeries: Hashable {
        let method: String
        let route: String
        let status: Int
    }

    /// Each answered kind's series, made once: making a `Counter` and a `Timer` looks them up in the
    /// registry under its lock, which cost more than the rest of a small request's bookkeeping.
    /// Bounded as the labels are: standard methods, route patterns, the statuses the gateway answers.
    private let requestSeries = Mutex<[RequestSeries: (CoreMetrics.Counter, CoreMetrics.Timer)]>([:])
    /// Every `sdgate_alert_subjects` series shown so far, so that one no subject is in shows 0.
    let alertSeries = Mutex<Set<AlertSeries>>([])

    // MARK: Ledger and jobs

    /// The open holds of every key, read from the ledger for a scrape.
    func openHolds(count: Int, amount: Credits) {
        Gauge(label: "sdgate_holds_open", factory: factory).record(count)
        Gauge(label: "sdgate_holds_open_credits", factory: factory).record(amount.asDouble)
    }

    /// Jobs waiting to be claimed on every replica, read from the job store for a scrape.
    func jobsQueued(_ count: Int) {
        Gauge(label: "sdgate_jobs_queued", factory: factory).record(count)
    }

    /// A job was claimed after waiting this long since it was queued.
    func jobStarted(waited: Duration) {
        Timer(label: "sdgate_job_queue_wait_seconds", factory: factory).recordNanoseconds(waited.wholeNanoseconds)
    }

    /// Connections open on this gateway's server, for a scrape.
    func openConnections(_ count: Int) {
        Gauge(label: "sdgate_http_connections_open", factory: factory).record(count)
    }
}
