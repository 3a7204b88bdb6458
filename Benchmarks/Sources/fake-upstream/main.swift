// A fake Segmind upstream for the proxy benchmark: `POST /v1/{slug}` answers at once with
// Segmind's base64 JSON (one PNG) and its headers, whatever the body, once the whole body has
// arrived. The runner measures a client against it directly and through sdgate.
//
// `--image-kib N` makes the PNG about N KiB (pseudo-random data after its header), as large as the
// images a real upstream sends; without it the PNG is 45 bytes.
import BenchmarkSupport
import Foundation
import HTTPServer

// A PNG signature and IHDR for 64x64, as the gateway inspects it, and the padding asked for.
let header: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 64, 0, 0, 0, 64,
                       8, 2, 0, 0, 0, 0x25, 0x0B, 0xE6, 0x89]
let end: [UInt8] = [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
let padding = intArgument("--image-kib").map { kib in (0..<(kib << 10)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) } } ?? []
let png = header + padding + end
let answer = Array(#"{"image":"\#(Data(png).base64EncodedString())","status":"Success","infer_time":0.001,"outputs":1,"image_format":"png"}"#.utf8)

var router = Router()
router.post("/v1/{slug}", maxBodyBytes: 8 << 20) { request, _ in
    guard request.headers["x-api-key"] != nil else { return .json(.unauthorized, Array(#"{"error":"Missing Authorization or x-api-key"}"#.utf8)) }
    return .json(.ok, answer, headers: ["x-cost": "0.0194", "x-remaining-credits": "100", "x-seed-value": "42", "x-generation-time": "0.001"])
}

var configuration = HTTPServer.Configuration()
configuration.host = "127.0.0.1"
configuration.port = portArgument()
configuration.limits.maxBodyBytes = 8 << 20
let server = try HTTPServer(configuration: configuration, responder: router)
let address = try server.start()
announce("listening on 127.0.0.1:\(address.port)")

// On SIGTERM/SIGINT: drain for up to two seconds, then exit.
serveUntilSignalled { await server.shutdown(gracePeriod: .seconds(2)) }
