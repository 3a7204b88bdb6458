import Foundation
import TestSupport
import Testing

@testable import HTTPServer

/// HTTPS on the same server: a self-signed certificate made for the run with `openssl`, trusted by
/// curl, Python `requests` and `httpx`, and Node's `fetch` through their usual options; and the
/// clients that do not complete a handshake, which must not hold a connection.
@Suite("TLS")
struct TLSTests {
    static let identity = Task { try await SelfSignedCertificate.make() }

    static func server(_ configure: @escaping (inout HTTPServer.Configuration) -> Void = { _ in }) async throws -> TestServer {
        let identity = try await identity.value
        return try TestServer { configuration in
            configuration.tls = .init(certificateFile: identity.certificateFile, privateKeyFile: identity.privateKeyFile)
            configure(&configuration)
        }
    }

    @Test func curlUploadsAndReusesItsConnectionOverTLS() async throws {
        let server = try await Self.server()
        let certificate = try await Self.identity.value.certificateFile
        let base = "https://127.0.0.1:\(server.port)"
        let folder = Scratch.path("curl-tls")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let upload = folder.appendingPathComponent("upload.bin"), download = folder.appendingPathComponent("download.bin")
        let bytes = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try Data(bytes).write(to: upload)
        let echoed = try await Command.run(
            "curl",
            [
                "-sS", "--cacert", certificate, "-v", "-o", download.path, "-w", "%{http_code}",
                "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(upload.path)",
                "\(base)/echo",
            ])
        #expect(echoed.status == 0 && echoed.output == "200", "\(echoed.errors)")
        #expect(echoed.errors.contains("SSL connection using TLSv1.3"), "\(echoed.errors)")
        #expect(try Data(contentsOf: download) == Data(bytes), "2 MiB up and back through TLS records")

        let reused = try await Command.run(
            "curl",
            [
                "-sS", "--cacert", certificate, "-w", " %{http_code} %{num_connects}\n",
                "\(base)/hello", "\(base)/missing", "\(base)/stream/300000", "-o", "/dev/null",
            ])
        #expect(reused.status == 0, "\(reused.errors)")
        #expect(
            reused.output.split(separator: "\n").map { $0.split(separator: " ").suffix(2).joined(separator: " ") }
                == ["200 1", "404 0", "200 0"], "\(reused.output)")
        // Without the certificate, curl refuses it: this is TLS, not a plain port.
        #expect(try await Command.run("curl", ["-sS", "\(base)/hello"]).status == 60)
        await server.stop()
    }

    /// With a max-age, every answer over HTTPS says `Strict-Transport-Security`: the responder's and
    /// the ones the server makes itself (here a 400 for a method that is not a token).
    @Test func hstsIsOnEveryAnswerTheServerSends() async throws {
        let server = try await Self.server { $0.tls?.strictTransportSecurityMaxAge = .seconds(600) }
        let certificate = try await Self.identity.value.certificateFile
        for (method, expected) in [("GET", "200"), ("B@D", "400")] {
            let answer = try await Command.run(
                "curl", ["-sS", "--cacert", certificate, "-D", "-", "-o", "/dev/null", "-X", method, "https://127.0.0.1:\(server.port)/hello"])
            let head = answer.output.lowercased()
            #expect(head.hasPrefix("http/1.1 \(expected)"), "\(method): \(answer.output) \(answer.errors)")
            #expect(head.contains("strict-transport-security: max-age=600\r\n"), "\(method): \(answer.output)")
        }
        await server.stop()
    }

    @Test func pythonRequestsAndHTTPXOverTLS() async throws {
        let server = try await Self.server()
        let certificate = try await Self.identity.value.certificateFile
        let result = try await Command.run(
            "python3",
            [
                Repository.path("Tests/HTTPServerTests/Clients/python_clients.py"), "\(server.port)",
                certificate,
            ])
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output == "requests: ok\nhttpx: ok\n")
        await server.stop()
    }

    @Test func aClientThatDoesNotFinishItsHandshakeIsClosed() async throws {
        let server = try await Self.server { $0.timeouts.tlsHandshake = .milliseconds(300) }
        // Silent after connecting, or half a ClientHello: closed when the handshake's time is up.
        let silent = try RawClient(port: server.port)
        let partial = try RawClient(port: server.port)
        try await partial.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        #expect(try await silent.isClosedByServer())
        #expect(try await partial.isClosedByServer())
        // Plain HTTP on the TLS port is no handshake at all: closed at once, with no answer.
        let plain = try await Command.run("curl", ["-sS", "-m", "10", "http://127.0.0.1:\(server.port)/hello"])
        #expect(plain.status != 0 && plain.status != 28 && plain.output.isEmpty, "\(plain.status) \(plain.errors)")
        #expect(await eventually { server.server.connectionCount == 0 })
        // And the server goes on serving.
        let certificate = try await Self.identity.value.certificateFile
        let hello = try await Command.run("curl", ["-sS", "--cacert", certificate, "https://127.0.0.1:\(server.port)/hello"])
        #expect(hello.output == "hello", "\(hello.errors)")
        await server.stop()
    }

    @Test func aCertificateOrKeyThatCannotBeUsedStopsStartUp() async throws {
        let identity = try await Self.identity.value
        var configuration = HTTPServer.Configuration()
        configuration.tls = .init(certificateFile: "/nonexistent/cert.pem", privateKeyFile: identity.privateKeyFile)
        #expect(throws: TLSSetupError.self) { try HTTPServer(configuration: configuration, responder: Router()) }
        // The key file given as the certificate, and the certificate as the key.
        configuration.tls = .init(certificateFile: identity.privateKeyFile, privateKeyFile: identity.certificateFile)
        let error = try #require(throws: TLSSetupError.self) { try HTTPServer(configuration: configuration, responder: Router()) }
        #expect(error.description.contains(identity.privateKeyFile), "\(error)")
    }
}
