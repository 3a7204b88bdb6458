import HTTPServer
import Ledger
import Logging

/// `GET /metrics`: every series in the Prometheus text format.
///
/// The series carry no key, prompt or path, only counts by route, model, status and upstream, so
/// by default a scraper needs no credentials (as with most exporters). A gateway reachable from
/// outside sets `metrics.token`, which a scraper then sends as `Authorization: Bearer <token>`; it is
/// not the admin token, so a scraper's credentials cannot manage keys. `metrics.enabled: false`
/// removes the route.
struct MetricsRoutes: Sendable {
    let metrics: GatewayMetrics
    /// The SHA-256 of the token a scrape must send; nil when scrapes are open.
    let tokenHash: [UInt8]?
    /// Where the gauges that live in the database are read, for each scrape.
    let ledger: (any GatewayStorage)?
    let openConnections: @Sendable () -> Int
    let logger: Logger
    /// The alerts' thresholds, when alerts are on: the subjects' states are read for each scrape.
    var alertThresholds: [Int]? = nil

    func register(on router: inout Router) {
        router.add(
            .get, "/metrics",
            checkHead: { head, _ in
                authorized(head.headers) ? nil : .text(.unauthorized, "/metrics needs the metrics token: Authorization: Bearer <token>\n")
            }
        ) { _, _ in
            await refreshGauges()
            var headers = HTTPHeaders()
            headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            return HTTPResponse(status: .ok, headers: headers, bytes: metrics.exposition())
        }
    }

    private func authorized(_ headers: HTTPHeaders) -> Bool {
        tokenHash.map { BearerToken.matches(headers, hash: $0) } ?? true
    }

    /// Reads the gauges whose truth is in the shared database, so every replica reports the same
    /// open holds and queue. A database that cannot be read leaves them as they were, and says so.
    private func refreshGauges() async {
        metrics.openConnections(openConnections())
        do {
            if let ledger {
                let holds = try await ledger.openHolds()
                metrics.openHolds(count: holds.count, amount: holds.amount)
                metrics.jobsQueued(try await ledger.queuedJobCount())
                if let alertThresholds { metrics.alertSubjects(try await ledger.alertStateCounts(), thresholds: alertThresholds) }
            }
        } catch {
            logger.error("ledger unavailable", metadata: ["operation": "metrics", "error": "\(error)"])
        }
    }
}
