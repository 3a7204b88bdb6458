package import HTTPServer
package import Logging

/// Everything sdgate is configured with, loaded once at start-up: built-in defaults, then a YAML
/// file, then `SDGATE_...` environment variables, then command-line flags.
package struct GatewayConfiguration: Sendable {
    /// The HTTP server's address, limits and timeouts.
    package var server = HTTPServer.Configuration()
    /// HTTPS: the certificate (PEM, its chain after it) and private key files; both empty: plain HTTP.
    /// Loading sets `server.tls` once both are known.
    package var tlsCertificate = ""
    package var tlsPrivateKey = ""
    /// With HTTPS, every answer carries `Strict-Transport-Security: max-age=` this (browsers then
    /// refuse plain HTTP to the gateway's name for that long); zero: no such header. Off by default:
    /// once sent, it cannot be taken back before it expires.
    package var hstsMaxAge: Duration = .zero
    /// gzip for the clients that accept it: text and JSON answers of at least a size.
    package var compressionEnabled = true
    package var compression = CompressingResponder.Settings()
    /// How long in-flight requests may run on after SIGTERM or SIGINT.
    package var shutdownGracePeriod: Duration = .seconds(10)
    /// Where sdgate keeps its database and generated images.
    package var dataDirectory = "./data"
    /// The model catalog (fields, defaults, ranges, prices), read at start-up.
    /// Empty: the catalog compiled into the binary (Config/models.yaml as it was built).
    package var catalogFile = ""
    package var logLevel: Logger.Level = .info
    /// Log lines waiting for a slow output, at most (`BufferedLogOutput`).
    package var logBufferBytes = 1 << 20
    /// The credit ledger: a SQLite file (empty: `<data_dir>/sdgate.sqlite`) or a `postgres://` URL,
    /// and how long a hold lives before the reaper voids it.
    package var ledgerDatabase = ""
    package var holdLifetime: Duration = .seconds(600)

    package var ledgerPath: String { ledgerDatabase.isEmpty ? dataDirectory + "/sdgate.sqlite" : ledgerDatabase }

    /// Whether the ledger is a PostgreSQL URL. A scheme's case does not matter (`Postgres://` is
    /// one too): taken for a file name, it gave each replica a SQLite ledger of its own.
    package var ledgerIsPostgres: Bool { Self.postgresScheme(of: ledgerPath) != nil }

    /// The scheme of a `postgres://` or `postgresql://` URL, in lower case; nil for anything else.
    static func postgresScheme(of location: String) -> String? {
        guard let end = location.range(of: "://") else { return nil }
        let scheme = location[..<end.lowerBound].lowercased()
        return scheme == "postgres" || scheme == "postgresql" ? scheme : nil
    }

    /// The admin API's token. Empty: one is generated on the first start, printed once, and only
    /// its hash kept in the ledger.
    package var adminToken = ""

    /// `GET /metrics`: served unless disabled; open, or only to the holder of `metricsToken`.
    package var metricsEnabled = true
    package var metricsToken = ""

    /// Upstream services by name, and which of them serve which model (`routes.<model>`), in order;
    /// `local` in a route names the team's own workers. A model without a route has no backend.
    package var upstreams: [String: UpstreamSettings] = [:]
    package var routes: [String: [String]] = [:]
    package var local = LocalWorkers()

    /// The name a route gives the local workers; no upstream may take it.
    package static let localRoute = "local"

    /// The gateway's address as clients reach it (`https://gateway.example`), for the URLs in
    /// answers; empty: each request's `Host`.
    package var publicURL = ""
    /// Background jobs: how many run at once, how long a ModelsLab call waits for its image before
    /// answering `processing`, how long a running job is its gateway's without renewing its lease
    /// (a job of a gateway that died runs again after this), how long a job may wait in the queue
    /// before it fails, and how long generated images are kept.
    package var jobConcurrency = 4
    package var jobWait: Duration = .seconds(20)
    package var jobLease: Duration = .seconds(60)
    package var jobMaxQueueTime: Duration = .seconds(3600)
    /// The most jobs one key may have queued at once; beyond it, 429.
    package var jobMaxQueuedPerKey = 16
    package var outputRetention: Duration = .seconds(3600)
    /// Where generated images are kept (`OutputPlacement`) and, in files, in which folder (empty:
    /// `<data_dir>/generations`).
    package var outputStore = OutputPlacement.automatic
    package var outputFolder = ""

    /// Input images: size limits, and which addresses image URLs may point at.
    package var images = Images()
    /// ModelsLab v3 webhooks: how they are sent and retried (the operator's alerts too).
    package var webhooks = Webhooks()
    /// The operator's alerts.
    package var alerts = Alerts()

    /// What loading found worth telling but not refusing, one line each (an `SDGATE_` variable
    /// that sets nothing): `config check` prints them, `serve` logs them.
    package var warnings: [String] = []

    package struct Webhooks: Sendable {
        /// Allow webhook URLs on private, loopback and link-local addresses (local setups only).
        package var allowPrivateAddresses = false
        /// One attempt: connecting, sending, and the receiver's answer.
        package var timeout: Duration = .seconds(10)
        /// The wait before the first retry; each next one waits twice as long, at most an hour.
        package var firstRetry: Duration = .seconds(5)
        /// How long after a job ended its webhook is still tried.
        package var retryFor: Duration = .seconds(86400)
        package var concurrency = 8

        package init() {}
    }

    package struct Images: Sendable {
        /// Allow image URLs on private, loopback and link-local addresses (local setups only).
        package var allowPrivateAddresses = false
        package var maxBytes = 20 << 20
        package var fetchTimeout: Duration = .seconds(15)

        package init() {}
    }

    package init() {}
}
