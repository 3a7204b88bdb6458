// Hummingbird 2 reference server: default Application + Router, the same three routes as the
// other two servers. Logging is at `warning` so the request path carries no log I/O.
import BenchmarkSupport
import Hummingbird
import Logging

#if canImport(Glibc)
import Glibc
#endif

func jsonResponse(_ status: HTTPResponse.Status, _ json: String) -> Response {
    Response(
        status: status,
        headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: json))
    )
}

let router = Router()
router.get("/health") { _, _ in
    jsonResponse(.ok, #"{"status":"ok"}"#)
}
// The body is not consumed here; Hummingbird drains it before reading the next request.
router.post("/v1/:slug") { _, _ in
    jsonResponse(.unauthorized, #"{"error":"Missing Authorization or x-api-key"}"#)
}
router.post("/upload") { request, context in
    // `maxUploadSize` of the default context is 2 MiB, the same limit as the other servers.
    let body = try await request.body.collect(upTo: context.maxUploadSize)
    return jsonResponse(.ok, "{\"bytes\":\(body.readableBytes)}")
}

var logger = Logger(label: "hummingbird-server")
logger.logLevel = .warning

let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: portArgument())),
    onServerRunning: { channel in
        announce("listening on 127.0.0.1:\(channel.localAddress?.port ?? 0)")
    },
    logger: logger
)
// Runs until SIGTERM or SIGINT, then shuts down gracefully.
try await app.runService()
