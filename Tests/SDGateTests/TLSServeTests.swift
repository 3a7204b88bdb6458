import Foundation
import TestSupport
import Testing

/// `sdgate serve` on HTTPS with a certificate made for the run: curl and a ModelsLab client written
/// with Python `requests` reach it, and the links in its answers say https.
@Suite("HTTPS through sdgate serve", .serialized)
struct TLSServeTests {
    @Test func curlAndRequestsGenerateOverHTTPSAndTheLinksSayHTTPS() async throws {
        let identity = try await SelfSignedCertificate.make()
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]],
            extraYAML: "server:\n  tls:\n    certificate: \(identity.certificateFile)\n    private_key: \(identity.privateKeyFile)\n")
        let member = try await gateway.createKey(name: "tess", credits: "1")
        let base = "https://127.0.0.1:\(gateway.port)"

        let health = try await Command.run("curl", ["-sS", "--cacert", identity.certificateFile, "\(base)/health"])
        #expect(health.output == #"{"status":"ok"}"#, "\(health.errors)")
        #expect(
            try await Command.run("curl", ["-sS", "-m", "10", "http://127.0.0.1:\(gateway.port)/health"]).status != 0,
            "no plain HTTP on the HTTPS port")

        // A v3 call with requests, trusting the certificate the usual way (REQUESTS_CA_BUNDLE).
        let client = Repository.path("Tests/SDGateTests/Clients/modelslab_client.py")
        let trust = ["REQUESTS_CA_BUNDLE": identity.certificateFile]
        let body = #"{"key": "\#(member.secret)", "prompt": "a lighthouse", "width": "512", "height": "512"}"#
        let call = try await Command.run("python3", [client, "post", "\(base)/api/v3/text2img", "json", body], environment: trust)
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(call.output.utf8)) as? [String: Any], "\(call.errors)")
        let v3 = try #require(answer["body"] as? [String: Any])
        #expect(v3["status"] as? String == "success", "\(v3)")
        let url = try #require((v3["output"] as? [String])?.first)
        #expect(url.hasPrefix("\(base)/generations/"), "the link the client follows is https: \(url)")
        let download = try await Command.run("python3", [client, "download", url], environment: trust)
        #expect(
            (try JSONSerialization.jsonObject(with: Data(download.output.utf8)) as? [String: Any])?["http"] as? Int == 200,
            "\(download.errors)")
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    @Test func aCertificateWithoutItsKeyOrAFileThatCannotBeReadIsAConfigurationError() async throws {
        let identity = try await SelfSignedCertificate.make()
        let alone = try await RunningGateway.run(["config", "check"], environment: ["SDGATE_SERVER_TLS_CERTIFICATE": identity.certificateFile])
        #expect(alone.status != 0 && alone.errors.contains("server.tls.certificate and server.tls.private_key go together"), "\(alone.errors)")
        let missing = try await RunningGateway.run(
            ["config", "check"],
            environment: [
                "SDGATE_SERVER_TLS_CERTIFICATE": identity.certificateFile, "SDGATE_SERVER_TLS_PRIVATE_KEY": "/nonexistent/key.pem",
            ])
        #expect(missing.status != 0 && missing.errors.contains("server.tls.private_key: '/nonexistent/key.pem' cannot be read"), "\(missing.errors)")
        let both = try await RunningGateway.run(
            ["config", "check"],
            environment: [
                "SDGATE_SERVER_TLS_CERTIFICATE": identity.certificateFile, "SDGATE_SERVER_TLS_PRIVATE_KEY": identity.privateKeyFile,
            ])
        #expect(both.status == 0 && both.output.contains("server.tls.certificate: \(identity.certificateFile)"), "\(both.errors)")
    }
}
