import HTTPServer
import Logging

/// One line in the log and one count in the metrics for every answered request. The line names the
/// route pattern, the status, the duration and the request id; never headers or bodies, where keys
/// and prompts travel.
struct AccessLog: RequestObserver {
    let logger: Logger
    let metrics: GatewayMetrics
    /// The buffered output `logger` writes to, when it does (`sdgate serve`) and has no metadata of
    /// its own to add: the line goes there directly, in the same format, without building
    /// swift-log's metadata dictionary, which cost a quarter of a small request's time. nil: the
    /// line goes through `logger`.
    private let direct: BufferedLogOutput?

    init(logger: Logger, metrics: GatewayMetrics, output: BufferedLogOutput?) {
        self.logger = logger
        self.metrics = metrics
        direct = logger.handler.metadata.isEmpty ? output : nil
    }

    /// The module swift-log names as the source of a line logged here.
    private static let source = String(#fileID.prefix { $0 != "/" })

    func answered(_ method: HTTPMethod, route: String, status: HTTPStatus, duration: Duration, requestID: String) {
        metrics.requestAnswered(method: method, route: route, status: status, duration: duration)
        guard logger.logLevel <= .info else { return }
        let milliseconds = "\((duration.seconds * 1_000_000).rounded() / 1000)"
        guard let direct else {
            logger.info(
                "request",
                metadata: [
                    "method": .string(GatewayMetrics.label(of: method)), "route": .string(route), "status": .string(String(status.code)),
                    "duration_ms": .string(milliseconds), "request_id": .string(requestID),
                ])
            return
        }
        // The fields in the order of their keys, as the handler writes them.
        var line = LogLine(level: .info, label: logger.label)
        line.field("duration_ms", milliseconds)
        line.field("method", GatewayMetrics.label(of: method))
        line.field("request_id", requestID)
        line.field("route", route)
        line.field("status", String(status.code))
        line.finish(source: Self.source, message: "request")
        direct.append(line)
    }
}
