// sdgate's own HTTP server (the root package's HTTPServer library) with the same three routes as
// the two reference servers.
import BenchmarkSupport
import HTTPServer

var router = Router()
router.get("/health") { _, _ in
    .json(.ok, Array(#"{"status":"ok"}"#.utf8))
}
router.post("/v1/{slug}") { _, _ in
    .json(.unauthorized, Array(#"{"error":"Missing Authorization or x-api-key"}"#.utf8))
}
router.post("/upload", maxBodyBytes: 2 << 20) { request, _ in
    .json(.ok, Array("{\"bytes\":\(request.body.count)}".utf8))
}

var configuration = HTTPServer.Configuration()
configuration.host = "127.0.0.1"
configuration.port = portArgument()
// wrk opens all its connections from 127.0.0.1, and the servers compared have no limit per address.
configuration.limits.maxConnectionsPerAddress = 0
let server = try HTTPServer(configuration: configuration, responder: router)
let address = try server.start()
announce("listening on 127.0.0.1:\(address.port)")

// On SIGTERM/SIGINT: drain for up to two seconds, then exit.
serveUntilSignalled { await server.shutdown(gracePeriod: .seconds(2)) }
