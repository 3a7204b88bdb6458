import Foundation
import HTTPServer
import Ledger
import Logging

/// One configuration key: its dotted YAML path, how a value is parsed into the configuration, and how
/// it is shown back. The table below is the single list of keys: the YAML reader, the environment
/// overrides and `config check` all walk it, so a key cannot exist in one and not the others.
/// A settable field of the configuration.
typealias ConfigurationField<Value> = any WritableKeyPath<GatewayConfiguration, Value> & Sendable

struct ConfigurationKey: Sendable {
    let path: String
    let summary: String
    let apply: @Sendable (inout GatewayConfiguration, String) throws(ConfigurationValueError) -> Void
    let render: @Sendable (GatewayConfiguration) -> String

    /// `server.limits.max_body_bytes` → `SDGATE_SERVER_LIMITS_MAX_BODY_BYTES`.
    var environmentName: String { Self.environmentName(of: path) }

    /// The variable that sets a dotted path: `upstreams.eu.base_url` → `SDGATE_UPSTREAMS_EU_BASE_URL`.
    static func environmentName(of path: String) -> String {
        "SDGATE_" + path.uppercased().map { $0 == "." ? "_" : $0 }.reduce(into: "") { $0.append($1) }
    }

    static func string(_ path: String, _ keyPath: ConfigurationField<String>, _ summary: String) -> Self {
        Self(
            path: path, summary: summary,
            apply: { config, text throws(ConfigurationValueError) in
                guard !text.isEmpty else { throw ConfigurationValueError("must not be empty") }
                config[keyPath: keyPath] = text
            }, render: { $0[keyPath: keyPath] })
    }

    static func integer(
        _ path: String, _ keyPath: ConfigurationField<Int>, _ range: ClosedRange<Int>, _ summary: String
    ) -> Self {
        Self(
            path: path, summary: summary,
            apply: { config, text throws(ConfigurationValueError) in
                config[keyPath: keyPath] = try ConfigurationValue.integer(text, in: range)
            }, render: { String($0[keyPath: keyPath]) })
    }

    static func bytes(
        _ path: String, _ keyPath: ConfigurationField<Int>, _ range: ClosedRange<Int>, _ summary: String
    ) -> Self {
        Self(
            path: path, summary: summary,
            apply: { config, text throws(ConfigurationValueError) in
                config[keyPath: keyPath] = try ConfigurationValue.bytes(text, in: range)
            }, render: { ConfigurationValue.renderBytes($0[keyPath: keyPath]) })
    }

    static func duration(
        _ path: String, _ keyPath: ConfigurationField<Duration>, _ range: ClosedRange<Duration>, _ summary: String
    ) -> Self {
        Self(
            path: path, summary: summary,
            apply: { config, text throws(ConfigurationValueError) in
                config[keyPath: keyPath] = try ConfigurationValue.duration(text, in: range)
            }, render: { ConfigurationValue.renderDuration($0[keyPath: keyPath]) })
    }

    static func boolean(_ path: String, _ keyPath: ConfigurationField<Bool>, _ summary: String) -> Self {
        Self(
            path: path, summary: summary,
            apply: { config, text throws(ConfigurationValueError) in
                switch text.lowercased() {
                case "true", "yes", "on": config[keyPath: keyPath] = true
                case "false", "no", "off": config[keyPath: keyPath] = false
                default: throw ConfigurationValueError("expected true or false, got '\(text)'")
                }
            }, render: { String($0[keyPath: keyPath]) })
    }

    static let all: [ConfigurationKey] =
        [
            ConfigurationKey(
                path: "server.host", summary: "address to listen on (0.0.0.0, ::, 127.0.0.1)",
                apply: { config, text throws(ConfigurationValueError) in
                    // Read as `serve` binds it: a name it would not bind must not pass `config check`.
                    guard SocketAddress(host: text, port: 0) != nil else {
                        throw ConfigurationValueError("expected a numeric IPv4 or IPv6 address (0.0.0.0, ::, 127.0.0.1) or localhost, got '\(text)'")
                    }
                    config.server.host = text
                }, render: { $0.server.host }),
            .integer("server.port", \.server.port, 0...65535, "port to listen on; 0 picks a free one"),
            .integer("server.backlog", \.backlogAsInt, 1...65535, "listen backlog"),
            .integer("server.event_loops", \.server.eventLoops, 1...256, "serial queues sharing the connections (default: one per core)"),
            .duration(
                "server.shutdown_grace_period", \.shutdownGracePeriod, .zero ... .seconds(3600),
                "how long requests in flight may finish after SIGTERM"),
            .bytes("server.limits.max_body_bytes", \.server.limits.maxBodyBytes, 0...(1 << 34), "default request body limit (413 beyond)"),
            .bytes(
                "server.limits.max_request_line_bytes", \.server.limits.parser.maxRequestLineBytes, 64...(1 << 20), "request line limit (414 beyond)"),
            .bytes("server.limits.max_header_bytes", \.server.limits.parser.maxHeaderBytes, 256...(1 << 24), "header section limit (431 beyond)"),
            .integer("server.limits.max_header_count", \.server.limits.parser.maxHeaderCount, 1...10_000, "header field count limit (431 beyond)"),
            .integer(
                "server.limits.max_connections", \.server.limits.maxConnections, 1...1_000_000,
                "open connections (a quarter of the open-file limit at most); more wait in the backlog"),
            .integer(
                "server.limits.max_connections_per_address", \.server.limits.maxConnectionsPerAddress, 0...1_000_000,
                "open connections from one client address (IPv6: its /64); more get 503 and are closed (0: no limit)"),
            // At least the largest body a route takes (an image request's 32 MiB), or such a body could never be read.
            .bytes(
                "server.limits.max_body_bytes_in_flight", \.server.limits.maxBodyBytesInFlight, (32 << 20)...(1 << 40),
                "request body bytes being received over all connections; a body past it gets 503 and Retry-After"),
            .integer(
                "server.limits.max_requests_per_connection", \.server.limits.maxRequestsPerConnection, 1...Int.max,
                "requests before a connection is closed"),
            .duration(
                "server.timeouts.header_read", \.server.timeouts.headerRead, .milliseconds(100) ... .seconds(3600),
                "time to receive a request head (408 beyond)"),
            .duration(
                "server.timeouts.body_idle", \.server.timeouts.bodyIdle, .milliseconds(100) ... .seconds(3600),
                "longest pause inside a request body (408 beyond)"),
            .integer(
                "server.timeouts.min_body_rate", \.server.timeouts.minBodyRate, 0...(1 << 30),
                "bytes per second a body must average, with body_idle of slack (408 below; 0: no minimum)"),
            .duration(
                "server.timeouts.request_read", \.server.timeouts.requestRead, .milliseconds(100) ... .seconds(86400),
                "time to receive a whole request, head and body (408 beyond)"),
            .duration(
                "server.timeouts.keep_alive_idle", \.server.timeouts.keepAliveIdle, .milliseconds(100) ... .seconds(86400),
                "idle time before a kept-alive connection is closed"),
            .duration(
                "server.timeouts.write_idle", \.server.timeouts.writeIdle, .milliseconds(100) ... .seconds(3600),
                "time a client may take to read an answer"),
            ConfigurationKey(
                path: "server.tls.certificate", summary: "HTTPS: the certificate file (PEM, its chain after it); empty: plain HTTP",
                apply: { config, text throws(ConfigurationValueError) in config.tlsCertificate = text },
                render: { $0.tlsCertificate.isEmpty ? "(none: plain HTTP)" : $0.tlsCertificate }),
            ConfigurationKey(
                path: "server.tls.private_key", summary: "HTTPS: the private key file (PEM) of the certificate",
                apply: { config, text throws(ConfigurationValueError) in config.tlsPrivateKey = text },
                render: { $0.tlsPrivateKey.isEmpty ? "(none)" : $0.tlsPrivateKey }),
            ConfigurationKey(
                path: "server.tls.hsts_max_age",
                summary: "HTTPS: send Strict-Transport-Security with this max-age (whole seconds) on every answer; 0: not sent",
                apply: { config, text throws(ConfigurationValueError) in
                    let maxAge = try ConfigurationValue.duration(text, in: .zero ... .seconds(2 * 365 * 86400))
                    // max-age counts whole seconds: 500ms would be sent as max-age=0, which tells
                    // browsers to forget HSTS, the opposite of what was asked.
                    guard maxAge == .zero || (maxAge >= .seconds(1) && maxAge.components.attoseconds == 0) else {
                        throw ConfigurationValueError("must be whole seconds, at least 1s (0: not sent), got '\(text)'")
                    }
                    config.hstsMaxAge = maxAge
                }, render: { ConfigurationValue.renderDuration($0.hstsMaxAge) }),
            .duration(
                "server.timeouts.tls_handshake", \.server.timeouts.tlsHandshake, .milliseconds(100) ... .seconds(3600),
                "time for a TLS handshake, from the connection's accept (closed beyond)"),
            .boolean("server.compression.enabled", \.compressionEnabled, "gzip text and JSON answers for clients that send Accept-Encoding: gzip"),
            .bytes("server.compression.min_bytes", \.compression.minimumBytes, 0...(1 << 30), "smaller answers are sent as they are"),
            .integer("server.compression.level", \.compression.level, 1...9, "zlib's level: 1 fastest, 9 smallest"),
            .string("data_dir", \.dataDirectory, "folder for the database and generated images"),
            .string("catalog_file", \.catalogFile, "the model catalog: fields, defaults, ranges and prices of every model"),
            ConfigurationKey(
                path: "ledger.database", summary: "the ledger: a SQLite file (empty: <data_dir>/sdgate.sqlite) or a postgres:// URL",
                apply: { config, text throws(ConfigurationValueError) in
                    // Any other URL is a mistake, not a file name.
                    if text.contains("://"), GatewayConfiguration.postgresScheme(of: text) == nil {
                        throw ConfigurationValueError("expected a SQLite file or a postgres:// URL, got another URL")
                    }
                    // Checked here, so that `config check` refuses what the ledger would refuse at start.
                    if GatewayConfiguration.postgresScheme(of: text) != nil {
                        do throws(PostgresSSLModeError) {
                            _ = try PostgresSSLMode(url: text)
                        } catch {
                            throw ConfigurationValueError(error.description)
                        }
                    }
                    config.ledgerDatabase = text
                },
                render: { config in
                    // A URL's password is a secret.
                    guard config.ledgerIsPostgres, var url = URLComponents(string: config.ledgerPath) else { return config.ledgerPath }
                    if url.password != nil { url.password = "redacted" }
                    return url.string ?? "(a postgres URL)"
                }),
            .duration(
                "ledger.hold_lifetime", \.holdLifetime, .seconds(1) ... .seconds(86400),
                "how long credits stay held for a request that never settles; a running one renews its hold every third of this"),
            ConfigurationKey(
                path: "admin.token", summary: "the admin API's token (a secret: prefer SDGATE_ADMIN_TOKEN); empty: generated on first start",
                apply: { config, text throws(ConfigurationValueError) in config.adminToken = try ConfigurationKey.token(text) },
                render: { $0.adminToken.isEmpty ? "(generated on first start)" : "(set, redacted)" }),
            .boolean("metrics.enabled", \.metricsEnabled, "serve GET /metrics (Prometheus text format)"),
            ConfigurationKey(
                path: "metrics.token", summary: "the token a scrape must send (a secret: prefer SDGATE_METRICS_TOKEN); empty: scrapes are open",
                apply: { config, text throws(ConfigurationValueError) in config.metricsToken = try ConfigurationKey.token(text) },
                render: { $0.metricsToken.isEmpty ? "(none: /metrics is open)" : "(set, redacted)" }),
            ConfigurationKey(
                path: "public_url", summary: "the gateway's address as clients reach it, for URLs in answers (empty: each request's Host)",
                apply: { config, text throws(ConfigurationValueError) in
                    guard text.isEmpty || text.hasPrefix("http://") || text.hasPrefix("https://") else {
                        throw ConfigurationValueError("must be an http:// or https:// address, such as https://gateway.example")
                    }
                    config.publicURL = text
                }, render: { $0.publicURL.isEmpty ? "(each request's Host)" : $0.publicURL }),
            .integer("jobs.concurrency", \.jobConcurrency, 1...256, "background generations running at once"),
            .duration("jobs.wait", \.jobWait, .zero ... .seconds(300), "how long a ModelsLab call waits for its image before answering processing"),
            .duration(
                "jobs.lease", \.jobLease, .seconds(1) ... .seconds(3600),
                "a running job of a gateway that stopped renewing this lease (it died) runs again"),
            .integer(
                "jobs.max_queued_per_key", \.jobMaxQueuedPerKey, 1...100_000,
                "the most jobs one key may have queued at once; more are refused with 429"),
            .duration(
                "jobs.max_queue_time", \.jobMaxQueueTime, .seconds(1) ... .seconds(7 * 86400),
                "a job still queued after this fails; its credits are held this much longer than hold_lifetime"),
            .duration(
                "outputs.retention", \.outputRetention, .seconds(60) ... .seconds(30 * 86400),
                "how long generated images are kept for the asynchronous APIs"),
            ConfigurationKey(
                path: "outputs.store", summary: "where generated images are kept: files or database (default: database with a PostgreSQL ledger)",
                apply: { config, text throws(ConfigurationValueError) in
                    guard let placement = OutputPlacement(rawValue: text) else { throw ConfigurationValueError("must be files or database") }
                    config.outputStore = placement
                }, render: { $0.outputStore == .automatic ? "(database with a PostgreSQL ledger, else files)" : $0.outputStore.rawValue }),
            ConfigurationKey(
                path: "outputs.folder",
                summary: "with outputs.store files: the folder (shared by replicas on one volume); empty: <data_dir>/generations",
                apply: { config, text throws(ConfigurationValueError) in config.outputFolder = text },
                render: { $0.outputFolder.isEmpty ? "(<data_dir>/generations)" : $0.outputFolder }),
            .boolean(
                "images.allow_private_addresses", \.images.allowPrivateAddresses, "let image URLs point at private, loopback and link-local addresses"
            ),
            .bytes("images.max_bytes", \.images.maxBytes, 1024...(1 << 30), "largest input image, decoded"),
            .duration(
                "images.fetch_timeout", \.images.fetchTimeout, .milliseconds(100) ... .seconds(300), "time to fetch an image URL, redirects included"),
            .boolean(
                "webhooks.allow_private_addresses", \.webhooks.allowPrivateAddresses,
                "let webhook URLs point at private, loopback and link-local addresses"),
            .duration(
                "webhooks.timeout", \.webhooks.timeout, .milliseconds(100) ... .seconds(300), "one webhook attempt, the receiver's answer included"),
            .duration(
                "webhooks.first_retry", \.webhooks.firstRetry, .milliseconds(100) ... .seconds(3600),
                "wait before a failed webhook's first retry; doubled for each next one, at most 1h"),
            .duration("webhooks.retry_for", \.webhooks.retryFor, .seconds(1) ... .seconds(7 * 86400), "how long a failing webhook is retried"),
            .integer("webhooks.concurrency", \.webhooks.concurrency, 1...256, "webhook attempts under way at once"),
            ConfigurationKey(
                path: "log.level", summary: "trace, debug, info, notice, warning, error or critical",
                apply: { config, text throws(ConfigurationValueError) in
                    guard let level = Logger.Level(rawValue: text.lowercased()) else {
                        throw ConfigurationValueError("must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    config.logLevel = level
                }, render: { $0.logLevel.rawValue }),
            .bytes(
                "log.buffer_bytes", \.logBufferBytes, (4 << 10)...(1 << 30),
                "log lines waiting to be written; past it, while the output is slow, lines are dropped and counted"),
        ] + local + alerts

    static func named(_ path: String) -> ConfigurationKey? { all.first { $0.path == path } }

    /// A bearer token the gateway is to check: long enough not to be guessed, at thousands of tries
    /// a second, and without spaces around it, which a client's header never carries (it could
    /// never match).
    static func token(_ text: String) throws(ConfigurationValueError) -> String {
        // The documentation's examples once showed this one; anyone who read them could use it.
        guard text != documentedPlaceholder else {
            throw ConfigurationValueError("is the documentation's placeholder, which anyone can read: generate one (openssl rand -hex 32)")
        }
        guard text.isEmpty || text.utf8.count >= minimumSecretBytes else {
            throw ConfigurationValueError("must be at least \(minimumSecretBytes) bytes (for example: openssl rand -hex 32)")
        }
        guard text.trimmingSpaces() == text else { throw ConfigurationValueError("must not begin or end with a space") }
        return text
    }
}

extension ConfigurationKey {
    static let documentedPlaceholder = "change-me-to-a-long-secret"
}

extension GatewayConfiguration {
    /// The backlog as a plain integer, so that it fits the integer key helper.
    fileprivate var backlogAsInt: Int {
        get { Int(server.backlog) }
        set { server.backlog = Int32(newValue) }
    }
}
