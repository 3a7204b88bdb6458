import Backends
import Dispatch
import Foundation
import GatewayAPI
package import GenerationCore
import GuardedHTTP
package import HTTPServer
import Jobs
import Ledger
import LocalInference
package import Logging
import UpstreamProxy

#if canImport(Glibc)
import Glibc
#endif

/// The composition root: builds every part from the configuration, serves until SIGTERM or SIGINT,
/// then shuts down gracefully.
package struct GatewayApp: Sendable {
    package let configuration: GatewayConfiguration
    package let logger: Logger
    let gate: any AccessGate
    /// The database behind `gate` (whose expired holds the application voids while it runs), and
    /// the jobs and webhooks kept beside the credits; nil: the gateway answers only what runs at once.
    let ledger: (any GatewayStorage)?
    /// The admin API, when the gateway has a ledger and an admin token.
    let admin: AdminRoutes?
    /// What generates a model that has no route to an upstream.
    let backend: any InferenceBackend
    /// The configured upstreams by name, each with its connection pool.
    let upstreams: [String: UpstreamBackend]
    /// The team's own workers, when any are configured; `serve` starts and stops them.
    let local: LocalBackend?
    /// The background jobs' runner, built with the server (it needs the routed backend).
    let jobRunner = JobRunnerBox()
    /// Every part's metrics, served at `/metrics`.
    package let metrics: GatewayMetrics
    /// Where `logger`'s lines go when it is `sdgate serve`'s buffered log: the access log writes there directly.
    let logOutput: BufferedLogOutput?
    /// The operator's alerts, when `alerts.urls` names receivers.
    let alerts: AlertMonitor?
    /// The generation calls under way, which `serve` waits for when it stops.
    let callsInFlight = CallsInFlight()

    /// - Parameters:
    ///   - gate: who may use the gateway and what they may spend.
    ///   - backend: what generates the models without a route to an upstream; by default they answer 503.
    ///   - metrics: where the gateway's metrics go; share it with a gate that records some.
    package init(
        configuration: GatewayConfiguration, logger: Logger, gate: any AccessGate, ledger: (any GatewayStorage)? = nil,
        backend: any InferenceBackend = NoBackend(), metrics: GatewayMetrics = GatewayMetrics()
    ) {
        self.init(
            configuration: configuration, logger: logger, logOutput: nil, gate: gate, ledger: ledger, admin: nil, metrics: metrics,
            backend: backend, alerts: nil)
    }

    private init(
        configuration: GatewayConfiguration, logger: Logger, logOutput: BufferedLogOutput?, gate: any AccessGate, ledger: (any GatewayStorage)?,
        admin: AdminRoutes?,
        metrics: GatewayMetrics, backend: any InferenceBackend = NoBackend(), alerts: AlertMonitor?
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.logOutput = logOutput
        self.gate = gate
        self.ledger = ledger
        self.admin = admin
        self.backend = backend
        self.alerts = alerts
        // An upstream's output URLs follow the rules of members' image URLs.
        let outputPolicy = AddressPolicy(allowPrivateAddresses: configuration.images.allowPrivateAddresses)
        upstreams = Dictionary(
            uniqueKeysWithValues: configuration.configuredUpstreams.map { upstream in
                let name = upstream.name
                return (
                    name,
                    UpstreamBackend(
                        upstream, outputPolicy: outputPolicy, logger: logger, metrics: metrics.factory,
                        reachability: { alerts?.upstream(name, reachable: $0) })
                )
            })
        local =
            configuration.local.isConfigured
            ? LocalBackend(
                settings: configuration.local.pool, logger: logger, metrics: metrics.factory, workerChanged: { alerts?.worker($0, up: $1) })
            : nil
    }

    /// The gateway as configured: keys and credits in the SQLite ledger under the data folder, and
    /// the admin API. On the first start without a configured admin token, one is generated: it is
    /// returned to be shown once, and only its hash is kept. `logOutput`: where `logger`'s lines go,
    /// when it is the buffered log.
    package static func open(
        configuration: GatewayConfiguration, logger: Logger, logOutput: BufferedLogOutput? = nil,
        clock: any WallClock = SystemWallClock()
    ) async throws -> (app: GatewayApp, newAdminToken: String?) {
        let missing = configuration.missingUpstreamKeys + configuration.local.missingFiles
        guard missing.isEmpty else { throw ConfigurationError(description: missing.joined(separator: "\n")) }
        let ledger = try await openLedger(configuration, ifMissing: .create, clock: clock)
        let metrics = GatewayMetrics()
        let ledgerGate = LedgerGate(
            ledger: ledger, holdLifetime: configuration.holdLifetime, clock: clock, logger: logger, metricsFactory: metrics.factory)
        let alerts = makeAlertMonitor(configuration, ledger: ledger, metrics: metrics, logger: logger)
        let gate: any AccessGate = alerts.map { AlertingGate(ledgerGate, monitor: $0) } ?? ledgerGate
        var newToken: String?
        let tokenHash: [UInt8]
        if !configuration.adminToken.isEmpty {
            tokenHash = APIKeySecret.hash(configuration.adminToken)
        } else if let stored = try await ledger.storedAdminTokenHash() {
            tokenHash = stored
        } else {
            let token = APIKeySecret.makeAdminToken()
            // Another replica may have stored one first: then that one stands.
            if try await ledger.storeAdminTokenHash(APIKeySecret.hash(token)) { newToken = token }
            tokenHash = try await ledger.storedAdminTokenHash() ?? APIKeySecret.hash(token)
        }
        let admin = AdminRoutes(ledger: ledger, tokenHash: tokenHash, clock: clock)
        return (
            GatewayApp(
                configuration: configuration, logger: logger, logOutput: logOutput, gate: gate, ledger: ledger, admin: admin, metrics: metrics,
                alerts: alerts),
            newToken
        )
    }

    /// What opening a SQLite ledger does where there is none: `serve` starts one on its first run;
    /// every other command works on the one a gateway keeps, and a mistyped path (or a check of a
    /// backup that is not there) must not pass for a new, empty ledger.
    package enum MissingLedger: Sendable {
        case create, refuse
    }

    /// Opens the ledger the configuration names: PostgreSQL for a `postgres://` URL (several
    /// replicas share it), otherwise the SQLite file, which only `.create` makes where it is missing.
    package static func openLedger(
        _ configuration: GatewayConfiguration, ifMissing: MissingLedger,
        clock: any WallClock = SystemWallClock()
    ) async throws -> any GatewayStorage {
        let location = configuration.ledgerPath
        if configuration.ledgerIsPostgres {
            return try await PostgresLedger(url: location, clock: clock)
        }
        switch ifMissing {
        case .create:
            let folder = URL(fileURLWithPath: location).deletingLastPathComponent()
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        case .refuse:
            guard FileManager.default.fileExists(atPath: location) else { throw NoLedgerError(path: location) }
        }
        return try SQLiteLedger(path: location, clock: clock)
    }

    var imageLoader: ImageLoader {
        var limits = ImageLoader.Limits()
        limits.maxBytes = configuration.images.maxBytes
        // Room for one image of the largest size allowed at least: one the budget could never
        // hold would be answered 503 for ever.
        let fetcher = URLImageFetcher(
            policy: AddressPolicy(allowPrivateAddresses: configuration.images.allowPrivateAddresses),
            timeout: configuration.images.fetchTimeout,
            budget: FetchBudget(limit: max(URLImageFetcher.defaultBudget, configuration.images.maxBytes)))
        return ImageLoader(limits: limits, fetcher: fetcher)
    }

    /// The routes the gateway answers.
    func makeRouter(
        catalog: ModelCatalog, backend: any InferenceBackend, isReady: @escaping @Sendable () -> Bool,
        openConnections: @escaping @Sendable () -> Int
    ) throws -> Router {
        var router = Router()
        let plainRefusal = router.refusal
        router.refusal = { status, head in ModelsLabDialect.routerRefusal(status, head) ?? plainRefusal(status, head) }
        HealthRoutes.register(on: &router, isReady: isReady)
        if configuration.metricsEnabled {
            MetricsRoutes(
                metrics: metrics, tokenHash: configuration.metricsToken.isEmpty ? nil : APIKeySecret.hash(configuration.metricsToken),
                ledger: ledger, openConnections: openConnections, logger: logger,
                alertThresholds: alerts == nil ? nil : configuration.alerts.thresholds
            )
            .register(on: &router)
        }
        // The asynchronous APIs keep their jobs in the ledger's database, and their images in the output store.
        let queue = try ledger.map { try makeJobQueue(store: $0, backend: backend, router: &router) }
        let jobs = queue?.jobs
        // One admission for every dialect (and so one rate limiter: a key's rate is per key,
        // whichever API it calls).
        let admission = Admission(
            catalog: catalog, gate: gate, images: imageLoader, rateLimiter: makeRateLimits(), callsInFlight: callsInFlight)
        SegmindDialect(admission: admission, backend: backend, jobs: jobs).register(on: &router)
        let outputs = queue.map { queue in OutputLinks(store: queue.outputs, baseURL: { queue.jobs.baseURL(host: $0) }) }
        OpenAIDialect(admission: admission, backend: backend, outputs: outputs).register(on: &router)
        A1111Dialect(admission: admission, backend: backend, checkpoints: makeCheckpointChoices()).register(on: &router)
        if let jobs {
            ModelsLabDialect(admission: admission, jobs: jobs, webhooks: webhookSender, wait: configuration.jobWait).register(on: &router)
        }
        if let admin {
            admin.register(on: &router)
            AdminPage.register(on: &router)
        }
        return router
    }

    /// The job runner (started with the server) and the output store with its route.
    private func makeJobQueue(
        store: any GatewayStorage, backend: any InferenceBackend, router: inout Router
    ) throws -> (jobs: JobQueue, outputs: any OutputStorage) {
        let outputs = try makeOutputStore(ledger: store)
        OutputRoutes(store: outputs).register(on: &router)
        let completions = JobCompletions()
        // The measured generation times behind the queue's positions and ETAs.
        let timings = JobTimings()
        let executor = GenerationJobExecutor(
            backend: backend, outputs: outputs, credits: gate, store: store, completions: completions,
            webhooks: (dispatcher: makeWebhookDispatcher(store: store), body: ModelsLabAnswer.WebhookRenderer()), timings: timings,
            logger: logger)
        var settings = JobRunner.Settings()
        settings.concurrency = configuration.jobConcurrency
        settings.lease = configuration.jobLease
        let metrics = metrics
        let clock = SystemWallClock()
        let runner = JobRunner(
            store: store, settings: settings, clock: clock, logger: logger,
            execute: { job in
                metrics.jobStarted(waited: .milliseconds(max(0, clock.millisecondsNow - job.createdAt)))
                return await executor.execute(job)
            },
            settle: executor.settle, discard: executor.discard)
        jobRunner.set(runner, store: store, executor: executor)
        let jobs = JobQueue(
            store: store, completions: completions, wake: runner.wake,
            publicBaseURL: configuration.publicURL.isEmpty ? nil : configuration.publicURL,
            hostScheme: configuration.server.tls == nil ? "http" : "https", maxQueueTime: configuration.jobMaxQueueTime,
            maxQueuedPerKey: configuration.jobMaxQueuedPerKey, cancel: runner.cancel, timings: timings, concurrency: settings.concurrency)
        return (jobs, outputs)
    }

    var webhookSender: WebhookSender {
        WebhookSender(
            policy: AddressPolicy(allowPrivateAddresses: configuration.webhooks.allowPrivateAddresses), timeout: configuration.webhooks.timeout)
    }

    /// Sends the webhooks of finished jobs; started and stopped with the job runner.
    private func makeWebhookDispatcher(store: any WebhookStore) -> WebhookDispatcher {
        var settings = WebhookDispatcher.Settings()
        settings.concurrency = configuration.webhooks.concurrency
        settings.firstRetry = configuration.webhooks.firstRetry
        settings.retryFor = configuration.webhooks.retryFor
        // An attempt that outlasts its timeout by this much was cut short by a crash.
        settings.attemptLease = configuration.webhooks.timeout + .seconds(60)
        settings.operatorSecret = configuration.alerts.secret.isEmpty ? nil : configuration.alerts.secret
        let (sender, metrics) = (webhookSender, metrics)
        return WebhookDispatcher(store: store, settings: settings, clock: SystemWallClock(), logger: logger) { delivery, secret in
            let attempt = await sender.send(delivery, secret: secret)
            if delivery.recipient == .operator { metrics.alertAttempt(delivered: attempt.status.map { (200..<300).contains($0) } ?? false) }
            return attempt
        }
    }

    /// The backend the dialects call: each model's route to the local workers and its upstreams,
    /// `backend` for the models without one. Throws for a route whose model is not in the catalog.
    func routedBackend(catalog: ModelCatalog) throws(ConfigurationError) -> any InferenceBackend {
        let routes = try configuration.routes(in: catalog)
        guard !routes.isEmpty else { return backend }
        let entries = routes.mapValues { names in
            names.compactMap { name -> RouteEntry? in
                let entry: (any RoutableBackend)? = name == GatewayConfiguration.localRoute ? local : upstreams[name]
                return entry.map { RouteEntry(name: name, backend: $0) }
            }
        }
        return RoutedBackend(routes: entries, fallback: backend, spillOverQueue: configuration.local.spillOverQueue, logger: logger)
    }

    /// Builds the HTTP server with the gateway's routes, not yet started. Throws if the catalog is
    /// broken, naming the file, the model and the field, or if a route names a model it lacks.
    package func makeServer() throws -> HTTPServer {
        let catalog = try configuration.loadCatalog()
        let backend = try routedBackend(catalog: catalog)
        let box = ServerBox()
        var router = try makeRouter(
            catalog: catalog, backend: backend, isReady: { box.server?.isShuttingDown == false },
            openConnections: { box.server?.connectionCount ?? 0 })
        router.observer = AccessLog(logger: logger, metrics: metrics, output: logOutput)
        let responder: any HTTPResponder =
            configuration.compressionEnabled ? CompressingResponder(router, settings: configuration.compression) : router
        let logger = logger
        let server = try HTTPServer(configuration: configuration.server, responder: responder) { error in
            logger.warning("accept failed", metadata: ["error": "\(error)"])
        }
        box.server = server
        if server.maxConnections < configuration.server.limits.maxConnections {
            logger.notice(
                "fewer connections than configured: a quarter of the descriptor limit",
                metadata: ["max_connections": "\(server.maxConnections)", "descriptor_limit": "\(DescriptorLimit.current ?? 0)"])
        }
        return server
    }
}

extension GatewayApp {
    /// The operator's alerts, when receivers are configured; none otherwise, and nothing watched.
    static func makeAlertMonitor(
        _ configuration: GatewayConfiguration, ledger: any GatewayStorage, metrics: GatewayMetrics, logger: Logger
    ) -> AlertMonitor? {
        let alerts = configuration.alerts
        guard alerts.isEnabled else { return nil }
        let measures = SpendingMeasures(ledger: ledger)
        return AlertMonitor(
            settings: .init(
                urls: alerts.urls, thresholds: alerts.thresholds, upstreamLowCredits: alerts.upstreamLowCredits,
                host: ProcessInfo.processInfo.hostName),
            store: ledger, measures: { keyID throws(LedgerError) in try await measures.after(chargeTo: keyID) }, logger: logger,
            sent: { metrics.alertQueued($0) })
    }
}

/// Lets the readiness route see the server it belongs to, which is built after the routes.
private final class ServerBox: @unchecked Sendable {
    // Safety: written once in `makeServer` before the server starts, only read afterwards.
    var server: HTTPServer?
}
