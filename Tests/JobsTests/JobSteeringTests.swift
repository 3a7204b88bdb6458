import Foundation
import GenerationCore
import Ledger
import Logging
import Synchronization
import TestSupport
import Testing

@testable import Jobs

/// What a key steers: its cancel reaches a queued job (settled at once, as failed) and a running
/// one (its `GenerationStop` is requested, whichever replica's runner took the cancel); and the
/// figures that positions and ETAs come from.
@Suite("Job steering")
struct JobSteeringTests {
    static func makeStore() throws -> SQLiteLedger {
        try SQLiteLedger(path: Scratch.path("steer", pathExtension: "sqlite").path)
    }

    static func enqueue(_ store: SQLiteLedger, model: String) async throws -> String {
        try await store.enqueueJob(
            NewJob(
                keyID: "kaaaaaaaa", dialect: "segmind", model: model, payload: Array(model.utf8), hold: HoldID("hold-\(model)"),
                cost: Credits(microCredits: 8000))
        ).id
    }

    /// What the runners started and settled, seen from the test.
    final class Probe: Sendable {
        let settled = Mutex<[String: JobRecord]>([:])
        /// Whether each settle ran in a cancelled task.
        let settledCancelled = Mutex<[String: Bool]>([:])
        let started = Mutex<[String]>([])
    }

    /// A runner whose jobs run until their stop is requested, and what it settled.
    static func runner(_ store: SQLiteLedger, probe: Probe) -> JobRunner {
        var settings = JobRunner.Settings()
        settings.concurrency = 1
        settings.pollInterval = .milliseconds(50)
        return JobRunner(
            store: store, settings: settings, clock: SystemWallClock(), logger: Logger(label: "test"),
            execute: { job in
                probe.started.withLock { $0.append(job.id) }
                let stop = JobRunner.stop
                // Stops as a local worker does: at the next step after the stop is requested.
                while stop?.isRequested != true { try? await Task.sleep(for: .milliseconds(10)) }
                return .failed("stopped after a step")
            },
            settle: { job, _ in
                probe.settled.withLock { $0[job.id] = job }
                probe.settledCancelled.withLock { $0[job.id] = Task.isCancelled }
            }, discard: { _ in Issue.record("nothing to discard") })
    }

    @Test func aQueuedJobIsSettledAtOnceAndARunningOneIsStoppedEvenFromAnotherRunner() async throws {
        let store = try Self.makeStore()
        let probe = Probe()
        let runner = Self.runner(store, probe: probe)
        // Another replica's runner: it runs nothing, and takes a cancel.
        let other = Self.runner(store, probe: probe)
        let running = try await Self.enqueue(store, model: "running")
        let waiting = try await Self.enqueue(store, model: "waiting")
        runner.start()
        #expect(await eventually { probe.started.withLock { $0 } == [running] })

        guard case .removed = try await runner.cancel(waiting) else { Issue.record("the waiting job was not removed"); return }
        #expect(probe.settled.withLock { $0[waiting]?.cancelledAt } != nil, "settled by the cancel itself, as failed")

        guard case .stopping = try await other.cancel(running) else { Issue.record("the running job was not marked"); return }
        #expect(await eventually { probe.settled.withLock { $0[running] } != nil }, "its runner saw the cancel in the store and stopped it")
        await runner.stop()
        #expect(probe.settled.withLock { $0[running]?.cancelledAt } != nil, "settled as cancelled: not delivered")
        #expect(try await store.job(id: running)?.state == .failed)
        #expect(probe.started.withLock { $0 } == [running], "the removed job never ran")
    }

    /// A client that leaves as its cancel is taken (its task cancelled) does not take the settle
    /// with it: PostgreSQL refuses a cancelled task's queries, and the removed job's hold stayed
    /// open until it expired.
    @Test func aQueuedJobsCancelIsSettledThoughItsClientLeft() async throws {
        let store = try Self.makeStore()
        let probe = Probe()
        let runner = Self.runner(store, probe: probe)
        let waiting = try await Self.enqueue(store, model: "waiting")
        let cancelling = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await runner.cancel(waiting)
        }
        guard case .removed = try await cancelling.value else { Issue.record("the waiting job was not removed"); return }
        #expect(probe.settledCancelled.withLock { $0[waiting] } == false, "settled outside the client's cancellation")
    }

    @Test func estimatesAreMovingAveragesOfMeasuredTimesPerModelAndBackend() {
        let timings = JobTimings()
        #expect(timings.estimate(model: "a") == JobTimings.unmeasuredSeconds, "nothing measured yet")
        timings.record(model: "a", backend: "local", seconds: 4)
        #expect(timings.estimate(model: "a") == 4)
        #expect(timings.estimate(model: "b") == 4, "an unmeasured model: the mean of the measured ones")
        timings.record(model: "a", backend: "local", seconds: 8)
        let average = 4 + JobTimings.newestWeight * (8 - 4)
        #expect(timings.estimate(model: "a") == average)
        // Served by another backend now: that backend's own figures.
        timings.record(model: "a", backend: "segmind", seconds: 20)
        #expect(timings.estimate(model: "a") == 20)
        timings.record(model: "a", backend: "local", seconds: 2)
        #expect(timings.estimate(model: "a") == average + JobTimings.newestWeight * (2 - average))
        for bad in [Double.nan, .infinity, -1] { timings.record(model: "a", backend: "local", seconds: bad) }
        #expect(timings.estimate(model: "a") == average + JobTimings.newestWeight * (2 - average), "unusable figures are ignored")

        timings.started("job", model: "a")
        let left = timings.remaining(of: "job") ?? -1
        #expect(left > 0 && left <= timings.estimate(model: "a"))
        #expect(timings.runningRemaining > 0 && timings.runningRemaining <= left, "the time left shrinks as it runs")
        timings.ended("job")
        #expect(timings.remaining(of: "job") == nil && timings.runningRemaining == 0)
    }

    @Test func theClaimOrderIsTheStoresTurnsByKey() async throws {
        // The stores' own claims are the reference: the order predicted from the listing is the
        // order in which they are then claimed.
        let store = try Self.makeStore()
        for (key, model) in [("kone", "a"), ("kone", "b"), ("ktwo", "c"), ("kone", "d"), ("kthree", "e"), ("ktwo", "f")] {
            _ = try await store.enqueueJob(
                NewJob(keyID: key, dialect: "segmind", model: model, payload: [], hold: HoldID("h-\(model)"), cost: Credits(microCredits: 1)))
        }
        _ = try await store.claimJob(leaseUntil: .max)
        let predicted = JobClaimOrder.order(try await store.queuedJobs()).map(\.model)
        var claimed: [String] = []
        while let job = try await store.claimJob(leaseUntil: .max) { claimed.append(job.model) }
        #expect(predicted == claimed && claimed.count == 5, "\(predicted) vs \(claimed)")
    }

    @Test(arguments: ["memory", "sqlite"])
    func positionsETAsAndLoadFollowTheMeasuredTimes(store kind: String) async throws {
        let store = try JobQueueTests.store(kind)
        let timings = JobTimings()
        timings.record(model: "sdxl1.0-txt2img", backend: "segmind", seconds: 6)
        let runners = 2
        let queue = JobQueue(store: store, completions: JobCompletions(), wake: {}, timings: timings, concurrency: runners)
        var ids: [String] = []
        for _ in 0..<3 { ids.append(try await JobQueueTests.enqueue(on: queue, keyID: "kowner")) }
        let each = timings.estimate(model: "sdxl1.0-txt2img")
        for (index, id) in ids.enumerated() {
            let standing = await queue.job(id, of: "kowner", dialect: "modelslab")?.standing
            // The jobs ahead shared by the runners, then its own.
            #expect(standing == JobStanding(position: index + 1, etaSeconds: Double(index) * each / Double(runners) + each))
        }
        #expect(await queue.load() == QueueLoad(queued: 3, seconds: 3 * each / Double(runners)))

        // The first is claimed (by a runner elsewhere: its time left is its estimate); the others move up.
        _ = try await store.claimJob(leaseUntil: .max)
        #expect(await queue.job(ids[0], of: "kowner", dialect: "modelslab")?.standing == JobStanding(position: 0, etaSeconds: each))
        #expect(await queue.job(ids[2], of: "kowner", dialect: "modelslab")?.standing?.position == 2)
        #expect(await queue.load() == QueueLoad(queued: 2, seconds: 2 * each / Double(runners)))

        // Cancelled while queued: gone from the queue, no standing, and another key's cancel finds nothing.
        guard case .notFound = await queue.cancel(ids[1], of: "kother", dialect: "modelslab") else { Issue.record("found"); return }
        guard case .cancelled(let cancelled) = await queue.cancel(ids[1], of: "kowner", dialect: "modelslab") else {
            Issue.record("not cancelled")
            return
        }
        #expect(cancelled.phase == .cancelled && cancelled.standing == nil && cancelled.files.isEmpty)
        #expect(await queue.job(ids[2], of: "kowner", dialect: "modelslab")?.standing?.position == 1)
    }
}
