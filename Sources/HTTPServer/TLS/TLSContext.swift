import COpenSSL

extension HTTPServer.Configuration {
    /// Serving HTTPS: the server's certificate (PEM, the chain after it) and its private key (PEM).
    public struct TLS: Sendable {
        public var certificateFile: String
        public var privateKeyFile: String
        /// Above zero: every answer says `Strict-Transport-Security: max-age=<seconds>` (RFC 6797),
        /// so that browsers come back over HTTPS only. Sent over HTTPS only, where it means anything.
        public var strictTransportSecurityMaxAge: Duration

        public init(certificateFile: String, privateKeyFile: String, strictTransportSecurityMaxAge: Duration = .zero) {
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
            self.strictTransportSecurityMaxAge = strictTransportSecurityMaxAge
        }
    }
}

/// Why TLS cannot be set up: a file that cannot be read or parsed, or a key of another certificate.
public struct TLSSetupError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

extension HTTPServer.Configuration.TLS {
    /// Whether the files make the identity the server would load: both readable, in PEM, and the
    /// key the certificate's. For a configuration check, before any server starts.
    public func check() throws(TLSSetupError) {
        _ = try TLSContext(self)
    }
}

/// The server's TLS identity, loaded once at start-up; each connection's session is made from it.
final class TLSContext: @unchecked Sendable {
    // Safety: the context is configured in `init` and only read afterwards; OpenSSL makes sessions
    // from one context on any thread.
    private let context: OpaquePointer

    init(_ configuration: HTTPServer.Configuration.TLS) throws(TLSSetupError) {
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw TLSSetupError(description: "TLS cannot be set up: \(Self.lastError())") }
        // From here on, a throw frees the context in `deinit`.
        self.context = context
        guard copenssl_configure_server(context) == 1 else { throw TLSSetupError(description: "TLS cannot be set up: \(Self.lastError())") }
        guard SSL_CTX_use_certificate_chain_file(context, configuration.certificateFile) == 1 else {
            throw TLSSetupError(description: "TLS certificate '\(configuration.certificateFile)' cannot be used: \(Self.lastError())")
        }
        guard SSL_CTX_use_PrivateKey_file(context, configuration.privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw TLSSetupError(description: "TLS private key '\(configuration.privateKeyFile)' cannot be used: \(Self.lastError())")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw TLSSetupError(description: "TLS private key '\(configuration.privateKeyFile)' does not belong to the certificate")
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// A session for an accepted socket, waiting for the client's hello; nil if OpenSSL cannot make one.
    func session(on fd: Int32) -> TLSTransport? {
        guard let ssl = SSL_new(context) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_accept_state(ssl)
        return TLSTransport(ssl: ssl, fd: fd)
    }

    /// OpenSSL's reason for the last failure on this thread, then its queue cleared.
    static func lastError() -> String {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return "unknown error" }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
