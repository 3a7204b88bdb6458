import Foundation
import TestSupport
import Testing

@testable import SDGateApp

@Suite("Configuration")
struct ConfigurationTests {
    static func load(_ yaml: String?, environment: [String: String] = [:]) throws -> GatewayConfiguration {
        try ConfigurationLoader.load(yaml: yaml, fileName: "test.yaml", environment: environment)
    }

    static func problem(_ yaml: String?, environment: [String: String] = [:]) -> String? {
        do {
            _ = try load(yaml, environment: environment)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func defaultsNeedNoFile() throws {
        let configuration = try Self.load(nil)
        #expect(configuration.server.host == "0.0.0.0")
        #expect(configuration.server.port == 8080)
        #expect(configuration.server.limits.maxBodyBytes == 1 << 20)
        #expect(configuration.server.timeouts.headerRead == .seconds(10))
    }

    @Test func fileValuesReplaceDefaults() throws {
        let configuration = try Self.load(
            """
            server:
              port: 9001
              limits:
                max_body_bytes: 16MiB
              timeouts:
                header_read: 250ms
                keep_alive_idle: 2m
            log:
              level: warning
            """)
        #expect(configuration.server.port == 9001)
        #expect(configuration.server.limits.maxBodyBytes == 16 << 20)
        #expect(configuration.server.timeouts.headerRead == .milliseconds(250))
        #expect(configuration.server.timeouts.keepAliveIdle == .seconds(120))
        #expect(configuration.logLevel == .warning)
    }

    @Test func theLimitsAgainstSlowAndGreedyClientsAreSetAndRangeChecked() throws {
        let configuration = try Self.load(
            """
            server:
              limits:
                max_connections_per_address: 0
                max_body_bytes_in_flight: 64MiB
              timeouts:
                min_body_rate: 500
                request_read: 2m
              tls:
                hsts_max_age: 24h
            """)
        #expect(configuration.server.limits.maxConnectionsPerAddress == 0)
        #expect(configuration.server.limits.maxBodyBytesInFlight == 64 << 20)
        #expect(configuration.server.timeouts.minBodyRate == 500)
        #expect(configuration.server.timeouts.requestRead == .seconds(120))
        #expect(configuration.hstsMaxAge == .seconds(86400))
        // A budget smaller than one image request's body could never read one.
        #expect(Self.problem("server:\n  limits:\n    max_body_bytes_in_flight: 1MiB\n")?.contains("max_body_bytes_in_flight") == true)
        #expect(Self.problem("server:\n  timeouts:\n    min_body_rate: -1\n")?.contains("min_body_rate") == true)
        #expect(Self.problem("server:\n  limits:\n    max_connections_per_address: 0x10\n")?.contains("max_connections_per_address") == true)
    }

    @Test func environmentOverridesTheFile() throws {
        let configuration = try Self.load(
            "server:\n  port: 9001\n",
            environment: [
                "SDGATE_SERVER_PORT": "9002",
                "SDGATE_SERVER_LIMITS_MAX_CONNECTIONS": "7",
                "SDGATE_DATA_DIR": "/var/lib/sdgate",
                "UNRELATED": "x",
            ])
        #expect(configuration.server.port == 9002)
        #expect(configuration.server.limits.maxConnections == 7)
        #expect(configuration.dataDirectory == "/var/lib/sdgate")
    }

    @Test func everyKeyHasAnEnvironmentName() {
        #expect(ConfigurationKey.named("server.limits.max_body_bytes")?.environmentName == "SDGATE_SERVER_LIMITS_MAX_BODY_BYTES")
        #expect(Set(ConfigurationKey.all.map(\.environmentName)).count == ConfigurationKey.all.count)
    }

    @Test func anUnknownKeyNamesItsLineAndTheKeyMeant() {
        let problem = Self.problem("server:\n  host: 127.0.0.1\n  prot: 80\n")
        #expect(problem == "test.yaml:3: server.prot: unknown key (did you mean 'server.port'?)")
    }

    @Test func aBadValueNamesItsLineAndWhatIsExpected() {
        #expect(Self.problem("server:\n  port: eighty\n") == "test.yaml:2: server.port: expected a whole number, got 'eighty'")
        #expect(Self.problem("server:\n  port: 70000\n") == "test.yaml:2: server.port: must be between 0 and 65535, got 70000")
        #expect(
            Self.problem("server:\n  timeouts:\n    body_idle: soon\n")?.hasPrefix("test.yaml:3: server.timeouts.body_idle: expected a duration")
                == true)
        #expect(Self.problem("log:\n  level: loud\n")?.hasPrefix("test.yaml:2: log.level: must be one of trace, debug") == true)
    }

    @Test func aBadEnvironmentValueNamesTheVariable() {
        #expect(Self.problem(nil, environment: ["SDGATE_SERVER_PORT": "x"]) == "SDGATE_SERVER_PORT: server.port: expected a whole number, got 'x'")
    }

    /// A misspelt variable would leave its setting at the default without a word. Warned, not
    /// refused: the prefix is shared with secrets the configuration names and with the tests.
    @Test func anSDGATEVariableThatSetsNothingIsAWarningNamingTheVariableMeant() throws {
        let configuration = try Self.load(
            "upstreams:\n  segmind:\n    dialect: segmind\n    base_url: https://api.segmind.com\n    key_env: SDGATE_SEGMIND_KEY\n",
            environment: [
                "SDGATE_SERVER_PROT": "9001", "SDGATE_SERVER_PORT": "9002", "SDGATE_SEGMIND_KEY": "sk-0123456789abcdef",
                "SDGATE_TEST_ANYTHING": "1",
            ])
        #expect(configuration.warnings == ["SDGATE_SERVER_PROT: no such setting; ignored (did you mean SDGATE_SERVER_PORT?)"])
        #expect(configuration.server.port == 9002)
    }

    @Test func aDurationTooLongToBuildIsRefusedLikeAnyOutOfRange() {
        #expect(Self.problem(nil, environment: ["SDGATE_JOBS_WAIT": "400"]) == "SDGATE_JOBS_WAIT: jobs.wait: must be between 0s and 5m, got 400s")
        for huge in ["10000000000000000", "1" + String(repeating: "0", count: 300) + "s", "9223372036854776h"] {
            #expect(
                Self.problem(nil, environment: ["SDGATE_JOBS_WAIT": huge]) == "SDGATE_JOBS_WAIT: jobs.wait: must be between 0s and 5m, got '\(huge)'")
        }
    }

    /// A duration is decimal digits with an optional fraction and a unit: `0x10` was read as 16 s,
    /// and exponents, signs, `inf` and `nan` passed through `Double` too.
    @Test func aDurationIsDecimalDigitsOnly() throws {
        for text in ["0x10", "0x10s", "1e3", "1e3ms", "+5", "-0", "inf", "nan", "5.", ".5", "1_000", "1,5s", " s"] {
            let problem = Self.problem(nil, environment: ["SDGATE_JOBS_WAIT": text])
            #expect(
                problem?.hasPrefix("SDGATE_JOBS_WAIT: jobs.wait: expected a duration such as 250ms, 10s or 5m") == true,
                "\(text): \(problem ?? "taken")")
        }
        for (text, duration) in [
            ("16", Duration.seconds(16)), ("1.5s", .milliseconds(1500)), ("250ms", .milliseconds(250)), ("2m", .seconds(120)), (" 7 s ", .seconds(7)),
        ] {
            #expect(try Self.load(nil, environment: ["SDGATE_JOBS_WAIT": text]).jobWait == duration, "\(text)")
        }
    }

    /// `serve` binds a numeric address only: a host name passed `config check` and then `serve`
    /// failed to bind. It is refused where the configuration is read, naming it.
    @Test func theListenAddressIsCheckedAsServeReadsIt() throws {
        for host in ["example.com", "0.0.0.0.0", "[::1", "127.0.0.1:8080", "*"] {
            #expect(
                Self.problem("server:\n  host: '\(host)'\n")
                    == "test.yaml:2: server.host: expected a numeric IPv4 or IPv6 address (0.0.0.0, ::, 127.0.0.1) or localhost, got '\(host)'")
        }
        for host in ["0.0.0.0", "::", "127.0.0.1", "[::1]", "localhost", "fe80::1"] {
            #expect(try Self.load(nil, environment: ["SDGATE_SERVER_HOST": host]).server.host == host)
        }
    }

    /// `max-age` counts whole seconds: 500ms was sent as `max-age=0`, which tells browsers to drop
    /// HSTS, the opposite of what was asked. Whole seconds from 1s, or 0 for none.
    @Test func theHSTSMaxAgeIsWholeSecondsFromOneSecond() throws {
        let variable = "SDGATE_SERVER_TLS_HSTS_MAX_AGE"
        for text in ["500ms", "1500ms", "0.5", "1.25s"] {
            #expect(
                Self.problem(nil, environment: [variable: text])
                    == "\(variable): server.tls.hsts_max_age: must be whole seconds, at least 1s (0: not sent), got '\(text)'")
        }
        for (text, maxAge) in [("0", Duration.zero), ("0s", .zero), ("1s", .seconds(1)), ("2000ms", .seconds(2)), ("1h", .seconds(3600))] {
            #expect(try Self.load(nil, environment: [variable: text]).hstsMaxAge == maxAge, "\(text)")
        }
    }

    /// The token the documentation once showed as an example is refused, for the admin API and
    /// for metrics: anyone who read the README knew it.
    @Test func theDocumentationsPlaceholderTokenIsRefused() {
        for (variable, key) in [("SDGATE_ADMIN_TOKEN", "admin.token"), ("SDGATE_METRICS_TOKEN", "metrics.token")] {
            #expect(
                Self.problem(nil, environment: [variable: "change-me-to-a-long-secret"])
                    == "\(variable): \(key): is the documentation's placeholder, which anyone can read: generate one (openssl rand -hex 32)")
        }
    }

    /// A URL's scheme has no case: `Postgres://` is PostgreSQL, not a SQLite file of that name (each
    /// replica then had a ledger of its own, and `config check` printed the password). Any other
    /// URL is refused.
    @Test func theLedgersURLIsPostgresWhateverItsCaseAndNoOtherURLIsAFile() throws {
        let configuration = try Self.load(nil, environment: ["SDGATE_LEDGER_DATABASE": "Postgres://sdgate:hunter2pw@db:5432/sdgate"])
        #expect(configuration.ledgerIsPostgres)
        #expect(configuration.rendered.contains("ledger.database: Postgres://sdgate:redacted@db:5432/sdgate"), "\(configuration.rendered)")
        #expect(!configuration.rendered.contains("hunter2pw"))
        #expect(try Self.load(nil, environment: ["SDGATE_LEDGER_DATABASE": "POSTGRESQL://u@h/d"]).ledgerIsPostgres)
        #expect(try !Self.load(nil, environment: ["SDGATE_LEDGER_DATABASE": "/srv/sdgate/ledger.sqlite"]).ledgerIsPostgres)
        #expect(
            Self.problem(nil, environment: ["SDGATE_LEDGER_DATABASE": "mysql://u@h/d"])
                == "SDGATE_LEDGER_DATABASE: ledger.database: expected a SQLite file or a postgres:// URL, got another URL")
    }

    /// An sslmode the ledger would not know is refused where `config check` sees it, naming it; a
    /// known one passes.
    @Test func anUnknownSSLModeOfThePostgresLedgerIsRefusedAtLoad() throws {
        let variable = "SDGATE_LEDGER_DATABASE", url = "postgres://sdgate@db:5432/sdgate?sslmode="
        let problem = try #require(Self.problem(nil, environment: [variable: url + "verify_full"]))
        #expect(
            problem.hasPrefix(
                "\(variable): ledger.database: sslmode: unknown mode 'verify_full': expected one of disable, allow, prefer, require, verify-ca, verify-full"
            ), "\(problem)")
        for mode in ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] {
            #expect(Self.problem(nil, environment: [variable: url + mode]) == nil, "\(mode)")
        }
    }

    /// A token anyone could guess in an afternoon (`x`), or one that no header can match (spaces
    /// around it), is refused; it was taken.
    @Test func aShortOrSpacedTokenIsRefused() throws {
        for variable in ["SDGATE_ADMIN_TOKEN", "SDGATE_METRICS_TOKEN"] {
            let key = variable == "SDGATE_ADMIN_TOKEN" ? "admin.token" : "metrics.token"
            #expect(
                Self.problem(nil, environment: [variable: "x"])
                    == "\(variable): \(key): must be at least 16 bytes (for example: openssl rand -hex 32)")
            #expect(Self.problem(nil, environment: [variable: " a-long-enough-secret "]) == "\(variable): \(key): must not begin or end with a space")
            #expect(Self.problem(nil, environment: [variable: "a-long-enough-secret"]) == nil)
        }
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        let problem = try #require(Self.problem("server:\n  port: x\n  backlog: 0\nnope: 1\n"))
        #expect(problem.split(separator: "\n").count == 3)
    }

    @Test func structuralMistakesAreRefused() {
        #expect(Self.problem("- a\n- b\n") == "test.yaml:1: the top level must be a mapping of keys")
        #expect(Self.problem("server:\n  port: [1, 2]\n") == "test.yaml:2: server.port: expected a single value")
        #expect(Self.problem("server: {port: 1\n")?.hasPrefix("test.yaml: ") == true)
    }

    @Test func theDocumentedExampleIsValidAndMatchesTheDefaults() throws {
        let fromFile = try GatewayConfiguration.load(file: Repository.path("Config/sdgate.yaml"), environment: [:])
        #expect(fromFile.rendered == GatewayConfiguration().rendered)
    }
}
