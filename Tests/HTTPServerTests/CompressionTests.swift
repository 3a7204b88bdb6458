import Foundation
import TestSupport
import Testing

@testable import HTTPServer

/// gzip for clients that accept it: the negotiation on its own, then curl and Python `requests`
/// against a live server whose answers are worth compressing or not.
@Suite("Compression")
struct CompressionTests {
    @Test(
        arguments: [
            ([], false), (["gzip"], true), (["GZip"], true), (["x-gzip"], true), (["deflate, gzip;q=0.5"], true),
            (["gzip;q=0"], false), (["gzip; q=0.000"], false), (["*"], true), (["*;q=0"], false), (["*, gzip;q=0"], false),
            (["identity;q=1, gzip;q=0.5"], false), (["gzip;q=1.0, identity;q=0.5"], true), (["br, zstd"], false),
            (["gzip;q=abc"], false), (["gzip;q=1.5"], false), (["gzip;q=0.0001"], false), (["deflate", "gzip"], true), ([""], false),
        ] as [([String], Bool)])
    func acceptEncodingIsReadAsTheRFCSays(fields: [String], gzip: Bool) {
        #expect(AcceptEncoding(fields).prefersGzip == gzip, "\(fields)")
    }

    static let json = Array(("[" + (0..<400).map { #"{"id":"k\#($0)","name":"member \#($0)","balance":"10.5"}"# }.joined(separator: ",") + "]").utf8)
    static let jpeg = [0xFF, 0xD8, 0xFF, 0xE0] + Array(repeating: UInt8(ascii: "a"), count: 8192)
    /// An answer that carries an image: base64 of bytes without repeats, half a megabyte of it.
    static let base64Answer = Array(
        (#"{"status":"success","image":""# + Data((0..<(384 << 10)).map { _ in UInt8.random(in: 0...255) }).base64EncodedString() + #""}"#)
            .utf8)

    static func server() throws -> HTTPServer {
        var router = Router()
        router.get("/json") { _, _ in .json(.ok, json) }
        router.get("/small") { _, _ in .json(.ok, Array(#"{"status":"ok"}"#.utf8)) }
        router.get("/base64") { _, _ in .json(.ok, base64Answer) }
        router.get("/image") { _, _ in HTTPResponse(status: .ok, headers: ["Content-Type": "image/jpeg"], bytes: jpeg) }
        router.get("/cached") { _, _ in .json(.ok, json, headers: ["Vary": "Accept-Encoding"]) }
        var configuration = HTTPServer.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        return try HTTPServer(configuration: configuration, responder: CompressingResponder(router))
    }

    /// curl's status line fields and body for one request.
    static func curl(_ port: Int, _ path: String, _ arguments: [String] = []) async throws -> (headers: String, body: [UInt8], downloaded: Int) {
        let folder = Scratch.path("gzip")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let body = folder.appendingPathComponent("body")
        let result = try await Command.run(
            "curl",
            ["-sS", "-D", "-", "-o", body.path, "-w", "%{size_download}"] + arguments
                + ["http://127.0.0.1:\(port)\(path)"])
        #expect(result.status == 0, "\(result.errors)")
        let downloaded = Int(result.output.split(whereSeparator: \.isNewline).last ?? "") ?? -1
        return (result.output.lowercased(), Array(try Data(contentsOf: body)), downloaded)
    }

    @Test func curlGetsGzipOnlyWhenItAsksAndOnlyForTextWorthIt() async throws {
        let server = try Self.server()
        let port = try server.start().port
        let compressed = try await Self.curl(port, "/json", ["--compressed"])
        #expect(compressed.headers.contains("content-encoding: gzip\r\n") && compressed.headers.contains("vary: accept-encoding\r\n"))
        #expect(compressed.body == Self.json, "curl decoded it to the very bytes")
        #expect(compressed.downloaded > 0 && compressed.downloaded < Self.json.count / 4, "\(compressed.downloaded) bytes on the wire")

        let plain = try await Self.curl(port, "/json")
        #expect(!plain.headers.contains("content-encoding") && plain.headers.contains("vary: accept-encoding\r\n"))
        #expect(plain.body == Self.json && plain.downloaded == Self.json.count, "\(plain.downloaded) of \(Self.json.count)")

        let refused = try await Self.curl(port, "/json", ["-H", "Accept-Encoding: gzip;q=0, identity"])
        #expect(!refused.headers.contains("content-encoding") && refused.body == Self.json)

        for path in ["/image", "/small"] {
            let answer = try await Self.curl(port, path, ["--compressed"])
            #expect(!answer.headers.contains("content-encoding") && !answer.headers.contains("vary"), "\(path): \(answer.headers)")
        }
        #expect(try await Self.curl(port, "/image", ["--compressed"]).body == Self.jpeg)
        let cached = try await Self.curl(port, "/cached", ["--compressed"])
        #expect(cached.headers.components(separatedBy: "vary:").count == 2, "one Vary, not two: \(cached.headers)")
        await server.shutdown()
    }

    /// Base64 of an image shrinks by Huffman coding alone, and zlib's full search for repeats it
    /// does not have cost five times the CPU: a trial of the first 64 KiB tells such a body from
    /// text with repeats, which keeps the full search.
    @Test func aBodyOfBase64IsHuffmanCodedAndTextWithRepeatsIsNot() async throws {
        #expect(Gzip.strategy(for: Self.base64Answer, level: 6) == .huffmanOnly)
        let report = Array(String(repeating: #"{"model":"sdxl1.0-txt2img","status":200,"cost":"0.0042"},"#, count: 4000).utf8)
        #expect(Gzip.strategy(for: report, level: 6) == .full)
        #expect(Gzip.strategy(for: Array(Self.base64Answer.prefix(100_000)), level: 6) == .full, "too small for a trial")

        let server = try Self.server()
        let port = try server.start().port
        let compressed = try await Self.curl(port, "/base64", ["--compressed"])
        #expect(compressed.headers.contains("content-encoding: gzip\r\n"))
        #expect(compressed.body == Self.base64Answer, "curl decoded it to the very bytes")
        #expect(compressed.downloaded < Self.base64Answer.count * 8 / 10, "\(compressed.downloaded) of \(Self.base64Answer.count) bytes on the wire")
        await server.shutdown()
    }

    @Test func pythonRequestsDecodesWhatItAskedFor() async throws {
        let server = try Self.server()
        let port = try server.start().port
        let result = try await Command.run("python3", [Repository.path("Tests/HTTPServerTests/Clients/python_gzip.py"), "\(port)"])
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output == "requests gzip: ok\n")
        await server.shutdown()
    }
}
