public import Foundation
public import GenerationCore
public import Ledger
public import Logging
import Synchronization

/// Turns what the gateway sees (a key charged, an upstream's answer, a worker's health) into the
/// operator's alerts: signed webhooks to every configured URL, queued in the webhook store, each
/// once per threshold crossing.
///
/// Each watched subject has a state in the ledger's database (`AlertStore`): how many thresholds
/// it has passed, or whether it is down. An alert goes out when the state moves up, in the same
/// transaction that moves it (a compare-and-set, so one replica sends it, and a restart neither
/// repeats nor loses it); a move down (a top-up, a new period, a worker back) re-arms it.
///
/// Nothing here is on a request's path: `charged`, `upstream` and `worker` note what happened and
/// return at once; a task of its own reads the ledger and moves the states. Several charges of one
/// key before it gets there are one evaluation. Alerts never touch credits.
public final class AlertMonitor: Sendable {
    public struct Settings: Sendable {
        /// The operator's receivers; each alert goes to all of them.
        public var urls: [String]
        /// Percentages of a limit, ascending, each an alert when first reached.
        public var thresholds: [Int]
        /// An upstream that reports fewer remaining credits than this is low; nil: not watched.
        public var upstreamLowCredits: Credits?
        /// Names this gateway's own workers apart from another replica's (the host name).
        public var host: String

        public init(urls: [String], thresholds: [Int] = [80, 100], upstreamLowCredits: Credits? = nil, host: String) {
            self.urls = urls
            self.thresholds = thresholds
            self.upstreamLowCredits = upstreamLowCredits
            self.host = host
        }
    }

    /// What happened since the task last looked, latest first-hand news only: the states are
    /// levels, so a key charged twice is evaluated once, and a worker that went down and came
    /// back in between has nothing to report. Bounded by the keys, upstreams and workers there are.
    private struct Pending: Sendable {
        var charged: Set<String> = []
        var upstreamCredits: [String: Credits] = [:]
        var upstreamsReachable: [String: Bool] = [:]
        var workersUp: [Int: Bool] = [:]

        var isEmpty: Bool { charged.isEmpty && upstreamCredits.isEmpty && upstreamsReachable.isEmpty && workersUp.isEmpty }
    }

    private let settings: Settings
    private let store: any AlertStore
    private let measures: @Sendable (String) async throws(LedgerError) -> [UsageMeasure]
    private let logger: Logger
    private let sent: @Sendable (AlertEvent) -> Void
    private let pending = Mutex(Pending())
    private let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// - Parameters:
    ///   - measures: what a charge to the key (by id) may have moved.
    ///   - sent: told of each alert queued (for the metrics).
    public init(
        settings: Settings, store: any AlertStore, measures: @escaping @Sendable (String) async throws(LedgerError) -> [UsageMeasure],
        logger: Logger, sent: @escaping @Sendable (AlertEvent) -> Void = { _ in }
    ) {
        self.settings = settings
        self.store = store
        self.measures = measures
        self.logger = logger
        self.sent = sent
        (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Starts the task that evaluates what was noted.
    public func start() {
        task.withLock { task in
            guard task == nil else { return }
            task = Task { for await _ in signals { await evaluatePending() } }
        }
    }

    /// Evaluates what is still pending, then stops: a charge noted before the gateway stops is
    /// not left unevaluated.
    public func stop() async {
        signal.finish()
        await task.withLock { $0 }?.value
        await evaluatePending()
    }

    // MARK: What happened

    /// A key was charged (and `upstream`, when one served it, reported on its account).
    public func charged(keyID: String, upstream: UpstreamReport?) {
        let remaining: (String, Credits)? =
            if settings.upstreamLowCredits != nil, let upstream, let text = upstream.remainingCredits, let credits = Credits(decimal: text) {
                (upstream.name, credits)
            } else {
                nil
            }
        note { pending in
            pending.charged.insert(keyID)
            if let (name, credits) = remaining { pending.upstreamCredits[name] = credits }
        }
    }

    /// An upstream answered (reachable) or could not be reached.
    public func upstream(_ name: String, reachable: Bool) {
        note { $0.upstreamsReachable[name] = reachable }
    }

    /// One of this gateway's workers (by its index) joined the pool or left it.
    public func worker(_ index: Int, up: Bool) {
        note { $0.workersUp[index] = up }
    }

    private func note(_ change: (inout Pending) -> Void) {
        pending.withLock { change(&$0) }
        signal.yield()
    }

    // MARK: Evaluation

    /// Moves every state that what was noted may have changed.
    public func evaluatePending() async {
        let noted = pending.withLock { pending in
            defer { pending = Pending() }
            return pending
        }
        guard !noted.isEmpty else { return }
        for keyID in noted.charged.sorted() {
            do {
                for measure in try await measures(keyID) { await evaluate(measure) }
            } catch {
                logger.error("alert measures not read", metadata: ["key.id": "\(keyID)", "error": "\(error)"])
            }
        }
        for (name, credits) in noted.upstreamCredits.sorted(by: { $0.key < $1.key }) {
            guard let threshold = settings.upstreamLowCredits else { break }
            let data: [String: JSONValue] = [
                "upstream": .string(name), "remaining_credits": .string(credits.description), "threshold": .string(threshold.description),
            ]
            await move("upstream-credits:\(name)", to: credits < threshold ? 1 : 0) { from, to in
                to > from ? [AlertEvent(kind: .upstreamCreditsLow, data: data)] : []
            }
        }
        for (name, reachable) in noted.upstreamsReachable.sorted(by: { $0.key < $1.key }) {
            await move("upstream:\(name)", to: reachable ? 0 : 1) { from, to in
                Self.downOrUp(from: from, to: to, down: .upstreamDown, up: .upstreamUp, data: ["upstream": .string(name)])
            }
        }
        for (index, up) in noted.workersUp.sorted(by: { $0.key < $1.key }) {
            let data: [String: JSONValue] = ["worker": .integer(Int64(index)), "host": .string(settings.host)]
            await move("worker:\(settings.host)/\(index)", to: up ? 0 : 1) { from, to in
                Self.downOrUp(from: from, to: to, down: .workerDown, up: .workerUp, data: data)
            }
        }
    }

    /// One measure against the thresholds: an alert for each threshold newly reached.
    func evaluate(_ measure: UsageMeasure) async {
        let thresholds = settings.thresholds
        let (kind, id): (String, String) =
            switch measure.account {
            case .key(let id): ("key", id)
            case .team(let id): ("team", id)
            }
        await move(measure.subject, epoch: measure.epoch, to: measure.level(thresholds: thresholds)) { from, to in
            guard to > from else { return [] }
            return thresholds[from..<to].map { threshold in
                AlertEvent(
                    kind: .creditsThreshold,
                    data: [
                        "account": .string(kind), "id": .string(id), "measure": .string(measure.name), "threshold": .integer(Int64(threshold)),
                        "used": .string(measure.used.description), "limit": .string(measure.limit.description),
                        "percent": .integer(measure.percentShown),
                    ])
            }
        }
    }

    private static func downOrUp(from: Int, to: Int, down: AlertEvent.Kind, up: AlertEvent.Kind, data: [String: JSONValue]) -> [AlertEvent] {
        if to > from { return [AlertEvent(kind: down, data: data)] }
        if to < from { return [AlertEvent(kind: up, data: data)] }
        return []
    }

    /// Moves a subject to `level` within `epoch` (a state of another epoch counts as level 0),
    /// queueing the alerts `events` makes of the move from the old level, in one transaction.
    /// A subject never recorded and still at 0 needs no record. Lost races are retried a few times:
    /// the winner's state is then read and judged afresh.
    private func move(_ subject: String, epoch: String = "", to level: Int, events: (_ from: Int, _ to: Int) -> [AlertEvent]) async {
        for _ in 0..<3 {
            do {
                let current = try await store.alertState(subject: subject)
                let target = AlertState(epoch: epoch, level: level)
                if current == target || (current == nil && level == 0) { return }
                let from = current.flatMap { $0.epoch == epoch ? $0.level : nil } ?? 0
                let alerts = events(from, level)
                let now = Date()
                let deliveries = alerts.flatMap { alert in settings.urls.map { NewWebhook.toOperator(url: $0, body: alert.body(at: now)) } }
                guard try await store.moveAlertState(subject: subject, from: current, to: target, queueing: deliveries) else { continue }
                for alert in alerts {
                    sent(alert)
                    logger.notice("alert", metadata: ["type": "\(alert.kind.rawValue)", "subject": "\(subject)"])
                }
                return
            } catch {
                logger.error("alert state not moved", metadata: ["subject": "\(subject)", "error": "\(error)"])
                return
            }
        }
    }
}
