import Foundation

/// A certificate for 127.0.0.1 and localhost, and its private key, made with `openssl` for one test
/// run, in a folder of their own; clients trust it by naming the certificate as their CA.
package struct SelfSignedCertificate: Sendable {
    package let certificateFile: String
    package let privateKeyFile: String

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package static func make() async throws -> SelfSignedCertificate {
        let folder = Scratch.path("tls")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let certificate = folder.appendingPathComponent("cert.pem").path, key = folder.appendingPathComponent("key.pem").path
        let made = try await Command.run(
            "openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", certificate,
            ])
        guard made.status == 0 else { throw Failure(description: "openssl req failed: \(made.errors)") }
        return SelfSignedCertificate(certificateFile: certificate, privateKeyFile: key)
    }
}
