public import GenerationCore
public import Ledger
public import Logging

/// Delivers the webhooks of a `WebhookStore` for as long as the application runs: claims each due
/// delivery, makes one attempt (`send`), records it, and retries a failed attempt with exponential
/// backoff (`firstRetry`, doubling up to `maxBackoff`) until `retryFor` after the delivery was made.
/// Deliveries live in the database, so those pending when the gateway stops go out after it starts
/// again, from this replica or another.
public final class WebhookDispatcher: Sendable {
    public struct Settings: Sendable {
        public var concurrency = 8
        public var firstRetry: Duration = .seconds(5)
        public var maxBackoff: Duration = .seconds(3600)
        public var retryFor: Duration = .seconds(86400)
        /// How long an attempt may take before another gateway may make it again (it died).
        public var attemptLease: Duration = .seconds(120)
        /// How often the store is asked for deliveries coming due.
        public var pollInterval: Duration = .seconds(1)
        /// What the operator's alerts are signed with (`whsec_...`); nil: none are configured, and
        /// an operator delivery left from before fails its attempts until its retries run out.
        public var operatorSecret: String?

        public init() {}
    }

    /// What an attempt came to: the receiver's HTTP status, or why there was none.
    public struct Attempt: Sendable {
        public var status: Int?
        public var error: String?

        public init(status: Int?, error: String?) {
            self.status = status
            self.error = error
        }

        /// A 2xx answer; anything else is tried again.
        var delivered: Bool { status.map { (200..<300).contains($0) } ?? false }
    }

    private let store: any WebhookStore
    private let settings: Settings
    private let clock: any WallClock
    private let logger: Logger
    private let send: @Sendable (WebhookDelivery, _ secret: String) async -> Attempt
    private let loop: ClaimLoop<WebhookDelivery>

    /// - Parameter send: one attempt at a delivery, signed with its key's secret or, for the
    ///   operator's alerts, with `settings.operatorSecret`.
    public init(
        store: any WebhookStore, settings: Settings, clock: any WallClock, logger: Logger,
        send: @escaping @Sendable (WebhookDelivery, _ secret: String) async -> Attempt
    ) {
        self.store = store
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.send = send
        loop = ClaimLoop(concurrency: settings.concurrency, pollInterval: settings.pollInterval, label: "webhooks", logger: logger)
    }

    public func start() {
        let (store, clock, lease) = (store, clock, settings.attemptLease)
        loop.start(
            claim: {
                let now = clock.millisecondsNow; return try await store.claimDueWebhook(now: now, leaseUntil: now + lease.wholeMilliseconds)
            },
            run: { delivery in await self.attempt(delivery) })
    }

    /// Stores a delivery and sends it now rather than at the next poll.
    public func enqueue(_ webhook: NewWebhook) async {
        do {
            _ = try await store.enqueueWebhook(webhook)
            loop.wake()
        } catch {
            // The job's answer stands and fetch still gives it; only its notice is lost.
            logger.error("webhook not queued", metadata: ["job": "\(webhook.jobID)", "error": "\(error)"])
        }
    }

    /// A delivery was stored here by another step (a job's settle): send it now rather than at the next poll.
    public func wake() {
        loop.wake()
    }

    /// Stops claiming and waits for the attempts under way.
    public func stop() async {
        await loop.stop()
    }

    /// When the attempt after the `number`th failed one is due, or nil when the retries ran out.
    func retryTime(after number: Int, of delivery: WebhookDelivery, at time: Timestamp) -> Timestamp? {
        let doublings = min(number - 1, 30)
        let backoff = min(settings.maxBackoff, settings.firstRetry * (1 << doublings))
        let next = time + backoff.wholeMilliseconds
        return next <= delivery.createdAt + settings.retryFor.wholeMilliseconds ? next : nil
    }

    private func attempt(_ delivery: WebhookDelivery) async {
        let number = delivery.attempts + 1
        let started = ContinuousClock.now, at = clock.millisecondsNow
        let result: Attempt
        if delivery.recipient == .operator, let secret = settings.operatorSecret {
            result = await send(delivery, secret)
        } else if delivery.recipient == .operator {
            result = Attempt(status: nil, error: "no operator secret is configured (alerts.secret)")
        } else {
            do {
                result = await send(delivery, try await store.webhookSecret(keyID: delivery.keyID))
            } catch {
                result = Attempt(status: nil, error: "the key's signing secret could not be read")
            }
        }
        let next: WebhookNext =
            if result.delivered {
                .delivered
            } else {
                retryTime(after: number, of: delivery, at: clock.millisecondsNow).map { .retry(at: $0) } ?? .failed
            }
        let record = WebhookAttempt(
            deliveryID: delivery.id, number: number, at: at, status: result.status, error: result.error,
            durationMilliseconds: (ContinuousClock.now - started).wholeMilliseconds)
        do {
            try await store.recordWebhookAttempt(record, then: next)
        } catch {
            // Not recorded: the claim's lease runs out and the delivery is attempted again.
            logger.error("webhook attempt not recorded", metadata: ["webhook": "\(delivery.id)", "error": "\(error)"])
            return
        }
        logger.info(
            "webhook attempt",
            metadata: [
                "webhook": "\(delivery.id)", "job": "\(delivery.jobID)", "attempt": "\(number)",
                "status": "\(result.status.map(String.init) ?? "none")", "next": "\(next)",
            ])
    }
}
