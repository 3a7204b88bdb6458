import HTTPServer

/// `GET /health` answers while the process runs (liveness); `GET /ready` answers 200 while the
/// gateway takes requests and 503 once it is shutting down, so a load balancer drains it first.
/// Both are answered from the request's head, on the connection's thread: probes come often.
enum HealthRoutes {
    static func register(on router: inout Router, isReady: @escaping @Sendable () -> Bool) {
        router.get(
            "/health",
            fromHead: { _ in
                .json(.ok, Array(#"{"status":"ok"}"#.utf8))
            })
        router.get(
            "/ready",
            fromHead: { _ in
                isReady()
                    ? .json(.ok, Array(#"{"status":"ready"}"#.utf8))
                    : .json(.serviceUnavailable, Array(#"{"status":"shutting down"}"#.utf8))
            })
    }
}
