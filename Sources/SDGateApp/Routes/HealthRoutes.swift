import HTTPServer

/// `GET /health` answers while the process runs (liveness); `GET /ready` answers 200 while the
/// gateway takes requests and 503 once it is shutting down, so a load balancer drains it first.
enum HealthRoutes {
    static func register(on router: inout Router, isReady: @escaping @Sendable () -> Bool) {
        router.get("/health") { _, _ in
            .json(.ok, Array(#"{"status":"ok"}"#.utf8))
        }
        router.get("/ready") { _, _ in
            isReady()
                ? .json(.ok, Array(#"{"status":"ready"}"#.utf8))
                : .json(.serviceUnavailable, Array(#"{"status":"shutting down"}"#.utf8))
        }
    }
}
