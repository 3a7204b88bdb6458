import GenerationCore
import HTTPServer
import Logging

/// The application's face to the HTTP server: gives every request an id, routes it, logs one line
/// for it and counts it. The line and the metrics name the route pattern (never the raw path, which
/// can carry ids), the status and the duration; never headers or bodies, where keys and prompts travel.
///
/// It also sets the headers every answer of a kind carries: `Cache-Control: no-store` on the admin
/// API's (they carry key secrets and the team's accounts, which no cache may keep), and
/// `Strict-Transport-Security` when configured.
struct GatewayResponder: HTTPResponder {
    let router: Router
    let logger: Logger
    let metrics: GatewayMetrics
    /// The `Strict-Transport-Security` value, when HTTPS is on and it is configured.
    var strictTransportSecurity: String?

    func admit(_ head: HTTPRequestHead) -> HTTPAdmission {
        let start = ContinuousClock.now
        let (admission, pattern) = router.admitMatching(head)
        let route = pattern ?? "unmatched"
        return admission.mapRejection { [self] response in
            var response = headed(response, route: route)
            let id = RequestID.make()
            response.headers.set("x-request-id", id)
            log(head.method, route: route, status: response.status, start: start, id: id)
            return response
        }
    }

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        let start = ContinuousClock.now
        let id = RequestID.make()
        // The handlers see the id (usage events carry it); a client's own x-request-id is replaced.
        var request = request
        request.head.headers.set("x-request-id", id)
        let route = request.route?.pattern ?? "unmatched"
        var response = headed(await router.respond(to: request), route: route)
        response.headers.set("x-request-id", id)
        log(request.method, route: route, status: response.status, start: start, id: id)
        return response
    }

    /// `route`: the pattern the request matched, so that every spelling of an admin path counts.
    private func headed(_ response: HTTPResponse, route: String) -> HTTPResponse {
        var response = response
        // The admin page's own files say how they may be cached (they hold no data); the API's answers do not.
        if route.hasPrefix("/admin/"), !response.headers.contains("Cache-Control") { response.headers.set("Cache-Control", "no-store") }
        if let strictTransportSecurity { response.headers.set("Strict-Transport-Security", strictTransportSecurity) }
        return response
    }

    private func log(_ method: HTTPMethod, route: String, status: HTTPStatus, start: ContinuousClock.Instant, id: String) {
        let elapsed = ContinuousClock.now - start
        metrics.requestAnswered(method: method, route: route, status: status, duration: elapsed)
        guard logger.logLevel <= .info else { return }
        let milliseconds = elapsed.seconds * 1000
        logger.info(
            "request",
            metadata: [
                "method": "\(method.rawValue)",
                "route": "\(route)",
                "status": "\(status.code)",
                "duration_ms": "\((milliseconds * 1000).rounded() / 1000)",
                "request_id": "\(id)",
            ])
    }
}

/// Request ids: 16 random hex digits, enough to be unique in any log a team keeps.
enum RequestID {
    static func make() -> String {
        let value = UInt64.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
