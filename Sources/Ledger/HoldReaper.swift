public import CoreMetrics
public import GenerationCore
public import Logging

/// Voids expired holds now and then, so that credits held by requests that never settled (a crash,
/// a lost connection to the database) come back, and forgets idempotency keys older than a day.
/// Started and stopped by the application.
public final class HoldReaper: Sendable {
    private let task: Task<Void, Never>

    public init(ledger: any Ledger, every interval: Duration, clock: any WallClock, logger: Logger, metricsFactory: any MetricsFactory) {
        let metrics = UsageMetrics(factory: metricsFactory)
        task = Task {
            while !Task.isCancelled {
                do {
                    let expired = try await ledger.expireHolds(now: clock.millisecondsNow)
                    if expired > 0 {
                        logger.info("expired holds voided", metadata: ["count": "\(expired)"])
                        metrics.holdsExpired(expired)
                    }
                    // Idempotency keys are honoured for a day.
                    _ = try await ledger.purgeIdempotencyKeys(before: clock.millisecondsNow - 86_400_000)
                } catch {
                    logger.error("hold reaper failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    public func stop() {
        task.cancel()
    }
}
