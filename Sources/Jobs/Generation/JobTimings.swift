import GenerationCore
public import Ledger
import Synchronization

/// How long jobs take, measured: a moving average of the generation times of recent jobs per model
/// and backend, updated as each job ends, and when each job running here started. The queue's
/// positions, ETAs and load (`JobQueue`) are worked out from these figures.
///
/// A model's estimate is the average of the backend that served it last (its route usually stays
/// the same). Before any job of a model was measured it is the mean of the other models' estimates,
/// and before any measurement at all `unmeasuredSeconds`. The figures are this replica's, kept in
/// memory: a restart measures afresh.
public final class JobTimings: Sendable {
    /// The weight of the newest measurement in the moving average: about the last five jobs count.
    public static let newestWeight = 0.3
    /// The estimate of a job before anything was measured.
    public static let unmeasuredSeconds = 10.0

    private struct State {
        var averages: [String: [String: Double]] = [:]
        var lastBackend: [String: String] = [:]
        var running: [String: (model: String, started: ContinuousClock.Instant)] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// A job of `model` took `seconds` on `backend`.
    public func record(model: String, backend: String, seconds: Double) {
        guard seconds.isFinite, seconds >= 0 else { return }
        state.withLock { state in
            let average = state.averages[model]?[backend].map { $0 + Self.newestWeight * (seconds - $0) } ?? seconds
            state.averages[model, default: [:]][backend] = average
            state.lastBackend[model] = backend
        }
    }

    /// The seconds a job of `model` is expected to take.
    public func estimate(model: String) -> Double {
        state.withLock { Self.estimate(model, in: $0) }
    }

    public func started(_ jobID: String, model: String) {
        state.withLock { $0.running[jobID] = (model, .now) }
    }

    public func ended(_ jobID: String) {
        _ = state.withLock { $0.running.removeValue(forKey: jobID) }
    }

    /// The seconds left of the job `jobID` running here (none below zero: it is late); nil if it
    /// does not run here.
    public func remaining(of jobID: String) -> Double? {
        state.withLock { state in state.running[jobID].map { Self.remaining($0, in: state) } }
    }

    /// The seconds left of every job running here, together.
    public var runningRemaining: Double {
        state.withLock { state in state.running.values.reduce(0) { $0 + Self.remaining($1, in: state) } }
    }

    private static func remaining(_ job: (model: String, started: ContinuousClock.Instant), in state: State) -> Double {
        max(0, estimate(job.model, in: state) - (ContinuousClock.now - job.started).seconds)
    }

    private static func estimate(_ model: String, in state: State) -> Double {
        if let backend = state.lastBackend[model], let average = state.averages[model]?[backend] { return average }
        let others = state.lastBackend.compactMap { model, backend in state.averages[model]?[backend] }
        return others.isEmpty ? unmeasuredSeconds : others.reduce(0, +) / Double(others.count)
    }
}

/// The order in which the queued jobs will be claimed, as the stores claim them: keys take turns,
/// the key whose last claim is the oldest (or that never had one) first, each key's jobs oldest
/// first. Jobs queued later, and claims on other replicas, can change it.
public enum JobClaimOrder {
    /// `queued` oldest first, as `JobStore.queuedJobs` lists them.
    public static func order(_ queued: [QueuedJob]) -> [QueuedJob] {
        var byKey: [String: [QueuedJob]] = [:]
        var firstSeen: [String: Int] = [:]
        for (index, job) in queued.enumerated() {
            byKey[job.keyID, default: []].append(job)
            if firstSeen[job.keyID] == nil { firstSeen[job.keyID] = index }
        }
        // The keys' first round, as the store orders it; then the same order again, round after round.
        var turns = byKey.keys.sorted { a, b in
            (byKey[a]?.first?.keyLastTurn ?? .min, firstSeen[a] ?? 0) < (byKey[b]?.first?.keyLastTurn ?? .min, firstSeen[b] ?? 0)
        }
        var next: [String: Int] = [:]
        var order: [QueuedJob] = []
        order.reserveCapacity(queued.count)
        while !turns.isEmpty {
            turns = turns.filter { key in
                let index = next[key, default: 0]
                guard let jobs = byKey[key], index < jobs.count else { return false }
                order.append(jobs[index])
                next[key] = index + 1
                return index + 1 < jobs.count
            }
        }
        return order
    }
}
