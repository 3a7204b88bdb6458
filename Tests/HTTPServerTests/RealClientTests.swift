import Foundation
import TestSupport
import Testing

@testable import HTTPServer

/// The clients people use, against a live server: each script asserts what it sees and exits
/// non-zero with the reason if anything is off.
@Suite("Real clients")
struct RealClientTests {
    @Test func curlSendsTwoMegabytesWithExpectContinue() async throws {
        let server = try TestServer()
        let folder = Scratch.path("curl")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let upload = folder.appendingPathComponent("upload.bin"), download = folder.appendingPathComponent("download.bin")
        let bytes = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try Data(bytes).write(to: upload)
        let result = try await Command.run(
            "curl",
            [
                "-sS", "-v", "-o", download.path, "-w", "%{http_code}",
                "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(upload.path)",
                "http://127.0.0.1:\(server.port)/echo",
            ])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output == "200")
        // curl sends Expect: 100-continue for a body this size, and waits for the interim answer.
        #expect(result.errors.contains("> Expect: 100-continue"))
        #expect(result.errors.contains("< HTTP/1.1 100 Continue"))
        #expect(try Data(contentsOf: download) == Data(bytes))
        await server.stop()
    }

    @Test func curlReusesItsConnectionAndReadsEveryStatus() async throws {
        let server = try TestServer()
        let base = "http://127.0.0.1:\(server.port)"
        let result = try await Command.run(
            "curl",
            [
                "-sS", "-w", " %{http_code} %{num_connects}\n",
                "\(base)/whoami", "\(base)/missing", "-X", "GET", "\(base)/hello",
            ])
        let lines = result.output.split(separator: "\n")
        #expect(result.status == 0, "\(result.errors)")
        #expect(lines.count == 3)
        #expect(lines.dropFirst().map { $0.split(separator: " ").suffix(2).joined(separator: " ") } == ["404 0", "200 0"])
        await server.stop()
    }

    @Test func pythonRequestsAndHTTPX() async throws {
        let server = try TestServer()
        let result = try await Command.run("python3", [Repository.path("Tests/HTTPServerTests/Clients/python_clients.py"), "\(server.port)"])
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output == "requests: ok\nhttpx: ok\n")
        await server.stop()
    }

    @Test func nodeFetch() async throws {
        let server = try TestServer()
        let result = try await Command.run("node", [Repository.path("Tests/HTTPServerTests/Clients/node_fetch.mjs"), "\(server.port)"])
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output == "fetch: ok\n")
        await server.stop()
    }
}
