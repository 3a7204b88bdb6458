import Logging
import Synchronization

/// Claims work from a durable queue and runs up to `concurrency` items at once, until stopped: it
/// claims when woken (work queued here) and every `pollInterval` (work queued by other replicas,
/// or coming due). The job runner and the webhook dispatcher each own one.
final class ClaimLoop<Item: Sendable>: Sendable {
    private enum Event: Sendable {
        case wake
        case finished
    }

    private struct Tasks {
        var loop: Task<Void, Never>?
        var ticker: Task<Void, Never>?
        var running: [UInt64: Task<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }

    private let concurrency: Int
    private let pollInterval: Duration
    /// What is claimed, for the log.
    private let label: String
    private let logger: Logger
    private let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let tasks = Mutex(Tasks())

    init(concurrency: Int, pollInterval: Duration, label: String, logger: Logger) {
        self.concurrency = concurrency
        self.pollInterval = pollInterval
        self.label = label
        self.logger = logger
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
    }

    /// - Parameters:
    ///   - claim: takes the next item due, or nil when there is none.
    ///   - run: works on a claimed item until it is done.
    func start(claim: @escaping @Sendable () async throws -> Item?, run: @escaping @Sendable (Item) async -> Void) {
        let ticker = Task { [continuation, pollInterval] in
            while !Task.isCancelled {
                continuation.yield(.wake)
                try? await Task.sleep(for: pollInterval)
            }
        }
        let loop = Task { await self.claimLoop(claim: claim, run: run) }
        tasks.withLock { tasks in
            tasks.ticker = ticker
            tasks.loop = loop
        }
    }

    func wake() {
        continuation.yield(.wake)
    }

    /// Stops claiming and waits for the items being worked on.
    func stop() async {
        let (loop, ticker) = tasks.withLock { ($0.loop, $0.ticker) }
        ticker?.cancel()
        continuation.finish()
        await loop?.value
        for task in tasks.withLock({ Array($0.running.values) }) { await task.value }
    }

    private func claimLoop(claim: @Sendable () async throws -> Item?, run: @escaping @Sendable (Item) async -> Void) async {
        var busy = 0
        for await event in events {
            if case .finished = event { busy -= 1 }
            while busy < concurrency {
                let item: Item?
                do {
                    item = try await claim()
                } catch {
                    logger.error("claim failed", metadata: ["queue": "\(label)", "error": "\(error)"])
                    break
                }
                guard let item else { break }
                busy += 1
                tasks.withLock { tasks in
                    let id = tasks.nextID
                    tasks.nextID += 1
                    tasks.running[id] = Task {
                        await run(item)
                        self.tasks.withLock { _ = $0.running.removeValue(forKey: id) }
                        self.continuation.yield(.finished)
                    }
                }
            }
        }
    }
}
