import Foundation
import PostgresNIO

/// The `sslmode` of a `postgres://` URL, as libpq reads it: how far the ledger trusts the network
/// between it and the server. A mode that requires TLS never falls back to plaintext, whatever the
/// server (or anyone between) answers: a fallback would send the password and every balance in clear.
public enum PostgresSSLMode: String, Sendable, CaseIterable {
    /// No TLS.
    case disable
    /// TLS if the server offers it, plaintext otherwise (libpq tries plaintext first; postgres-nio
    /// cannot, so this is `prefer`).
    case allow
    /// TLS if the server offers it, plaintext otherwise; libpq's default.
    case prefer
    /// TLS or no connection; the certificate is not verified (libpq's meaning of `require`).
    case require
    /// TLS or no connection; the certificate must chain to a trusted CA, whatever name it is for.
    case verifyCA = "verify-ca"
    /// TLS or no connection; the certificate must chain to a trusted CA and name the host.
    case verifyFull = "verify-full"

    /// The mode a URL names; without `sslmode`, `prefer`, as libpq. An unknown mode is refused: taken
    /// for another, a misspelt `verify-ful` would connect without the checks it asked for.
    public init(url: String) throws(PostgresSSLModeError) {
        let values = URLComponents(string: url)?.queryItems?.filter { $0.name == "sslmode" }.map { $0.value ?? "" } ?? []
        guard let value = values.last else {
            self = .prefer
            return
        }
        guard values.count == 1 else { throw PostgresSSLModeError(description: "sslmode: given \(values.count) times; give it once") }
        guard let mode = Self(rawValue: value) else {
            let known = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw PostgresSSLModeError(description: "sslmode: unknown mode '\(value)': expected one of \(known)")
        }
        self = mode
    }

    /// Whether a server that declines TLS is refused rather than spoken to in plaintext.
    public var requiresTLS: Bool {
        switch self {
        case .disable, .allow, .prefer: false
        case .require, .verifyCA, .verifyFull: true
        }
    }

    /// How the server's certificate is checked.
    public enum CertificateCheck: Sendable {
        /// Any certificate: TLS against a listener, not against a server in the middle.
        case none
        /// It must chain to a trusted CA.
        case trustedChain
        /// It must chain to a trusted CA and name the host the URL names.
        case trustedChainAndHostName
    }

    /// How the server's certificate is checked; nil without TLS.
    public var certificateCheck: CertificateCheck? {
        switch self {
        case .disable: nil
        // Opportunistic TLS stops a passive listener only; like libpq, it checks no certificate.
        case .allow, .prefer, .require: CertificateCheck.none
        case .verifyCA: .trustedChain
        case .verifyFull: .trustedChainAndHostName
        }
    }

    /// The connection's TLS for postgres-nio.
    var tls: PostgresClient.Configuration.TLS {
        guard let check = certificateCheck else { return .disable }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification =
            switch check {
            case .none: .none
            case .trustedChain: .noHostnameVerification
            case .trustedChainAndHostName: .fullVerification
            }
        return requiresTLS ? .require(configuration) : .prefer(configuration)
    }
}

/// A URL's `sslmode` that names no mode, or names one twice.
public struct PostgresSSLModeError: Error, CustomStringConvertible, Sendable {
    public let description: String
}
