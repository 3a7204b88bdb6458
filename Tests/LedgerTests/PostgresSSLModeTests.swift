import Foundation
import Ledger
import TestSupport
import Testing

/// A `postgres://` URL's `sslmode`, read as libpq reads it: a mode that requires TLS never goes on
/// in plaintext, whatever the server (or someone between) answers.
@Suite("PostgreSQL sslmode")
struct PostgresSSLModeTests {
    static func url(_ query: String, port: Int = 5432) -> String {
        "postgres://sdgate:secret@127.0.0.1:\(port)/ledger" + query
    }

    @Test(arguments: [
        ("?sslmode=disable", PostgresSSLMode.disable, false, nil),
        ("", .prefer, false, PostgresSSLMode.CertificateCheck.none),
        ("?sslmode=allow", .allow, false, PostgresSSLMode.CertificateCheck.none),
        ("?sslmode=prefer", .prefer, false, PostgresSSLMode.CertificateCheck.none),
        ("?sslmode=require", .require, true, PostgresSSLMode.CertificateCheck.none),
        ("?sslmode=verify-ca", .verifyCA, true, .trustedChain),
        ("?application_name=sdgate&sslmode=verify-full", .verifyFull, true, .trustedChainAndHostName),
    ])
    func eachModeMeansWhatItMeansToLibpq(
        query: String, mode: PostgresSSLMode, requiresTLS: Bool, check: PostgresSSLMode.CertificateCheck?
    ) throws {
        let read = try PostgresSSLMode(url: Self.url(query))
        #expect(read == mode)
        #expect(read.requiresTLS == requiresTLS)
        #expect(read.certificateCheck == check)
    }

    /// Taken for the default, a misspelt mode would connect without the checks it asked for.
    @Test(arguments: ["?sslmode=verify-ful", "?sslmode=REQUIRE", "?sslmode=", "?sslmode=require&sslmode=disable"])
    func anUnknownOrRepeatedModeIsRefused(query: String) {
        #expect(throws: PostgresSSLModeError.self) { try PostgresSSLMode(url: Self.url(query)) }
    }

    @Test func theRefusalNamesTheModeAndTheKnownOnes() {
        #expect {
            try PostgresSSLMode(url: Self.url("?sslmode=verify-ful"))
        } throws: {
            "\($0)".contains("'verify-ful'") && "\($0)".contains("verify-full")
        }
    }

    /// A server that answers the TLS request with "no": with `require`, the ledger sends nothing
    /// more (no startup message, no user name, no password) and does not open.
    @Test func requireNeverGoesOnInPlaintextWhenTheServerDeclinesTLS() async throws {
        let listener = try TLSDecliningListener()
        defer { listener.stop() }
        let opening = Task { try await PostgresLedger(url: Self.url("?sslmode=require", port: listener.port)) }
        #expect(await eventually(timeout: .seconds(60)) { listener.snapshot.declined >= 1 })
        opening.cancel()
        let opened = await opening.result
        #expect(throws: (any Error).self) { try opened.get() }
        #expect(listener.snapshot.sentInPlaintext.isEmpty, "\(String(decoding: listener.snapshot.sentInPlaintext, as: UTF8.self))")
    }

    /// The same server with `prefer`, libpq's default: the client goes on without TLS, as it is
    /// meant to.
    @Test func preferGoesOnInPlaintextWhenTheServerDeclinesTLS() async throws {
        let listener = try TLSDecliningListener()
        defer { listener.stop() }
        let opening = Task { try await PostgresLedger(url: Self.url("?sslmode=prefer", port: listener.port)) }
        #expect(await eventually(timeout: .seconds(60)) { !listener.snapshot.sentInPlaintext.isEmpty })
        opening.cancel()
        _ = await opening.result
        // The startup message names the user in clear.
        #expect(String(decoding: listener.snapshot.sentInPlaintext, as: UTF8.self).contains("sdgate"))
    }

    /// The URL parser takes any number for a port; past 65535 the gateway did not start, and said
    /// only that the pool's circuit breaker had tripped.
    @Test func aPortNoSocketCanHaveIsRefused() async {
        for port in [0, 65_536, 99_999] {
            do {
                _ = try await PostgresLedger(url: Self.url("?sslmode=disable", port: port))
                Issue.record("port \(port) was taken")
            } catch {
                #expect(error.description == "storage failed: the database URL's port must be 1 to 65535")
            }
        }
    }
}
