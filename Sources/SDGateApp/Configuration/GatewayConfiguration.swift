public import HTTPServer
public import Logging

/// Everything sdgate is configured with, loaded once at start-up: built-in defaults, then a YAML
/// file, then `SDGATE_...` environment variables, then command-line flags.
public struct GatewayConfiguration: Sendable {
    /// The HTTP server's address, limits and timeouts.
    public var server = HTTPServer.Configuration()
    /// HTTPS: the certificate (PEM, its chain after it) and private key files; both empty: plain HTTP.
    /// Loading sets `server.tls` once both are known.
    public var tlsCertificate = ""
    public var tlsPrivateKey = ""
    /// With HTTPS, every answer carries `Strict-Transport-Security: max-age=` this (browsers then
    /// refuse plain HTTP to the gateway's name for that long); zero: no such header. Off by default:
    /// once sent, it cannot be taken back before it expires.
    public var hstsMaxAge: Duration = .zero
    /// gzip for the clients that accept it: text and JSON answers of at least a size.
    public var compressionEnabled = true
    public var compression = CompressingResponder.Settings()
    /// How long in-flight requests may run on after SIGTERM or SIGINT.
    public var shutdownGracePeriod: Duration = .seconds(10)
    /// Where sdgate keeps its database and generated images.
    public var dataDirectory = "./data"
    /// The model catalog (fields, defaults, ranges, prices), read at start-up.
    public var catalogFile = "Config/models.yaml"
    public var logLevel: Logger.Level = .info
    /// Log lines waiting for a slow output, at most (`BufferedLogOutput`).
    public var logBufferBytes = 1 << 20
    /// The credit ledger: a SQLite file (empty: `<data_dir>/sdgate.sqlite`) or a `postgres://` URL,
    /// and how long a hold lives before the reaper voids it.
    public var ledgerDatabase = ""
    public var holdLifetime: Duration = .seconds(600)

    public var ledgerPath: String { ledgerDatabase.isEmpty ? dataDirectory + "/sdgate.sqlite" : ledgerDatabase }

    /// The admin API's token. Empty: one is generated on the first start, printed once, and only
    /// its hash kept in the ledger.
    public var adminToken = ""

    /// `GET /metrics`: served unless disabled; open, or only to the holder of `metricsToken`.
    public var metricsEnabled = true
    public var metricsToken = ""

    /// Upstream services by name, and which of them serve which model (`routes.<model>`), in order;
    /// `local` in a route names the team's own workers. A model without a route has no backend.
    public var upstreams: [String: UpstreamSettings] = [:]
    public var routes: [String: [String]] = [:]
    public var local = LocalWorkers()

    /// The name a route gives the local workers; no upstream may take it.
    public static let localRoute = "local"

    /// The gateway's address as clients reach it (`https://gateway.example`), for the URLs in
    /// answers; empty: each request's `Host`.
    public var publicURL = ""
    /// Background jobs: how many run at once, how long a ModelsLab call waits for its image before
    /// answering `processing`, how long a running job is its gateway's without renewing its lease
    /// (a job of a gateway that died runs again after this), how long a job may wait in the queue
    /// before it fails, and how long generated images are kept.
    public var jobConcurrency = 4
    public var jobWait: Duration = .seconds(20)
    public var jobLease: Duration = .seconds(60)
    public var jobMaxQueueTime: Duration = .seconds(3600)
    /// The most jobs one key may have queued at once; beyond it, 429.
    public var jobMaxQueuedPerKey = 16
    public var outputRetention: Duration = .seconds(3600)

    /// Input images: size limits, and which addresses image URLs may point at.
    public var images = Images()
    /// ModelsLab v3 webhooks: how they are sent and retried.
    public var webhooks = Webhooks()

    public struct Webhooks: Sendable {
        /// Allow webhook URLs on private, loopback and link-local addresses (local setups only).
        public var allowPrivateAddresses = false
        /// One attempt: connecting, sending, and the receiver's answer.
        public var timeout: Duration = .seconds(10)
        /// The wait before the first retry; each next one waits twice as long, at most an hour.
        public var firstRetry: Duration = .seconds(5)
        /// How long after a job ended its webhook is still tried.
        public var retryFor: Duration = .seconds(86400)
        public var concurrency = 8

        public init() {}
    }

    public struct Images: Sendable {
        /// Allow image URLs on private, loopback and link-local addresses (local setups only).
        public var allowPrivateAddresses = false
        public var maxBytes = 20 << 20
        public var fetchTimeout: Duration = .seconds(15)

        public init() {}
    }

    public init() {}
}
