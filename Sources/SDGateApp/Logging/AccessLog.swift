import HTTPServer
import Logging

/// One line in the log and one count in the metrics for every answered request. The line names the
/// route pattern, the status, the duration and the request id; never headers or bodies, where keys
/// and prompts travel.
struct AccessLog: RequestObserver {
    let logger: Logger
    let metrics: GatewayMetrics

    func answered(_ method: HTTPMethod, route: String, status: HTTPStatus, duration: Duration, requestID: String) {
        metrics.requestAnswered(method: method, route: route, status: status, duration: duration)
        guard logger.logLevel <= .info else { return }
        logger.info(
            "request",
            metadata: [
                "method": "\(method.rawValue)",
                "route": "\(route)",
                "status": "\(status.code)",
                "duration_ms": "\((duration.seconds * 1_000_000).rounded() / 1000)",
                "request_id": "\(requestID)",
            ])
    }
}
