// sdgate's own HTTP server (the root package's HTTPServer library) with the same three routes as
// the two reference servers.
import BenchmarkSupport
import Dispatch
import HTTPServer

#if canImport(Glibc)
import Glibc
#endif

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
let server = try HTTPServer(configuration: configuration, responder: router)
let address = try server.start()
announce("listening on 127.0.0.1:\(address.port)")

// On SIGTERM/SIGINT: drain for up to two seconds, then exit. Main parks in dispatchMain().
var signalSources: [any DispatchSourceSignal] = []
for signalNumber in [SIGTERM, SIGINT] {
    signal(signalNumber, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
    source.setEventHandler {
        Task {
            await server.shutdown(gracePeriod: .seconds(2))
            exit(0)
        }
    }
    source.resume()
    signalSources.append(source)
}
dispatchMain()
