import Foundation
import GenerationCore
import Ledger
import Logging
import Synchronization
import TestSupport
import Testing

@testable import Jobs

/// The runner on a real SQLite job store: bounded concurrency, each job run once even with two
/// runners on one database, and credits settled only after the job's end is recorded.
@Suite("Job runner")
struct JobRunnerTests {
    /// What the runners did, seen from the test.
    final class Probe: Sendable {
        let executed = Mutex<[String]>([])
        let settled = Mutex<[String: JobState]>([:])
        let active = Mutex<(now: Int, peak: Int)>((0, 0))
        let discarded = Mutex<[String]>([])
        /// Jobs whose `execute` waits until this is false.
        let holding = Mutex<Bool>(false)
    }

    static func makeStore() throws -> SQLiteLedger {
        try SQLiteLedger(path: Scratch.path("jobs", pathExtension: "sqlite").path)
    }

    static func enqueue(_ store: SQLiteLedger, model: String) async throws -> String {
        try await store.enqueueJob(
            NewJob(
                keyID: "kaaaaaaaa", dialect: "segmind", model: model, payload: Array(model.utf8),
                hold: HoldID("hold-\(model)"), cost: Credits(microCredits: 8000))
        ).id
    }

    static func runner(_ store: SQLiteLedger, probe: Probe, concurrency: Int) -> JobRunner {
        var settings = JobRunner.Settings()
        settings.concurrency = concurrency
        settings.pollInterval = .milliseconds(50)
        return JobRunner(
            store: store, settings: settings, clock: SystemWallClock(), logger: Logger(label: "test"),
            execute: { job in
                probe.active.withLock {
                    $0.now += 1; $0.peak = max($0.peak, $0.now)
                }
                while probe.holding.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(10)) }
                // Long enough for the others to be claimed meanwhile.
                try? await Task.sleep(for: .milliseconds(20))
                probe.active.withLock { $0.now -= 1 }
                probe.executed.withLock { $0.append(job.id) }
                let model = String(decoding: job.payload, as: UTF8.self)
                return model.hasPrefix("bad") ? .failed("no such style") : .completed(Array("done \(model)".utf8))
            },
            settle: { job, _ in
                // The end is recorded before the credits move.
                let state = (try? await store.job(id: job.id))?.state ?? .queued
                probe.settled.withLock { $0[job.id] = state }
            },
            discard: { job in probe.discarded.withLock { $0.append(job.id) } })
    }

    @Test func jobsRunAtMostConcurrencyAtOnceAndEndCompletedOrFailed() async throws {
        let store = try Self.makeStore(), probe = Probe()
        let runner = Self.runner(store, probe: probe, concurrency: 3)
        runner.start()
        var ids: [String] = []
        for index in 0..<12 { ids.append(try await Self.enqueue(store, model: index == 5 ? "bad-5" : "model-\(index)")) }
        runner.wake()
        #expect(await eventually { probe.settled.withLock { $0.count } == 12 })
        await runner.stop()
        #expect(probe.active.withLock { $0.peak } <= 3)
        #expect(probe.discarded.withLock { $0 }.isEmpty)
        #expect(probe.executed.withLock { $0.sorted() } == ids.sorted())
        for id in ids {
            let job = try #require(try await store.job(id: id))
            #expect(probe.settled.withLock { $0[id] } == job.state)
            if job.model == "bad-5" {
                #expect(job.state == .failed && job.error == "no such style")
            } else {
                #expect(job.state == .completed && job.result == Array("done \(job.model)".utf8))
            }
        }
    }

    @Test func twoRunnersOnOneDatabaseRunEachJobOnce() async throws {
        let store = try Self.makeStore(), probe = Probe()
        let runners = [Self.runner(store, probe: probe, concurrency: 2), Self.runner(store, probe: probe, concurrency: 2)]
        var ids: [String] = []
        for index in 0..<20 { ids.append(try await Self.enqueue(store, model: "model-\(index)")) }
        for runner in runners { runner.start() }
        #expect(await eventually { probe.settled.withLock { $0.count } == 20 })
        for runner in runners { await runner.stop() }
        #expect(probe.executed.withLock { $0.sorted() } == ids.sorted(), "every job once, none twice")
        #expect(probe.discarded.withLock { $0 }.isEmpty)
    }

    /// A run whose job failed while it worked (the upkeep took its lease back for good) ends
    /// unrecorded and unsettled, and what it stored is discarded: the failure's settle came first.
    /// A run whose job only went back to the queue keeps its outputs: their names are the next
    /// run's too.
    @Test func aRunWhoseJobFailedMeanwhileDiscardsWhatItStored() async throws {
        let store = try Self.makeStore(), probe = Probe()
        probe.holding.withLock { $0 = true }
        let runner = Self.runner(store, probe: probe, concurrency: 1)
        runner.start()
        let requeued = try await Self.enqueue(store, model: "requeued")
        #expect(await eventually { probe.active.withLock { $0.now } == 1 })
        // Its lease taken back (as if its gateway had died), it is queued again.
        let later = SystemWallClock().millisecondsNow + 3_600_000
        #expect(try await store.recoverAbandonedJobs(now: later, maxAttempts: 3).isEmpty)
        probe.holding.withLock { $0 = false }
        #expect(await eventually { probe.settled.withLock { $0[requeued] } == .completed }, "run again, and completed")
        #expect(probe.discarded.withLock { $0 }.isEmpty)

        probe.holding.withLock { $0 = true }
        let failed = try await Self.enqueue(store, model: "failed")
        #expect(await eventually { probe.active.withLock { $0.now } == 1 })
        #expect(try await store.recoverAbandonedJobs(now: later, maxAttempts: 1).map(\.id) == [failed])
        probe.holding.withLock { $0 = false }
        #expect(await eventually { probe.discarded.withLock { $0 } == [failed] })
        await runner.stop()
        #expect(probe.settled.withLock { $0[failed] } == nil, "the upkeep settles it, not the run")
        #expect(try await store.job(id: failed)?.state == .failed)
    }

    /// Two runs of one job on one runner (the first taken back while it still worked): the first
    /// one's end leaves the second's stop in place, so a cancel reaches it at once. It removed it,
    /// and the cancel waited for the next look at the store.
    @Test func aRunTakenBackLeavesTheNextRunsStopInPlace() async throws {
        let store = try Self.makeStore()
        let released = Mutex<Set<Int>>([])
        let stopped = Mutex<[Int]>([])
        var settings = JobRunner.Settings()
        settings.concurrency = 2
        // No look at the store before the test ends: only the runner's own stops can stop a run.
        settings.pollInterval = .seconds(600)
        settings.lease = .seconds(600)
        let logged = LoggedLines()
        let runner = JobRunner(
            store: store, settings: settings, clock: SystemWallClock(), logger: Logger(label: "test") { _ in KeptLines(kept: logged) },
            execute: { job in
                let stop = JobRunner.stop
                while !released.withLock({ $0.contains(job.attempts) }) {
                    if stop?.isRequested == true {
                        stopped.withLock { $0.append(job.attempts) }
                        return .failed("stopped")
                    }
                    try? await Task.sleep(for: .milliseconds(10))
                }
                return .completed([])
            },
            settle: { _, _ in }, discard: { _ in })
        runner.start()
        let id = try await Self.enqueue(store, model: "twice")
        runner.wake()
        #expect(await eventually { (try? await store.job(id: id))?.attempts == 1 })
        _ = try await store.recoverAbandonedJobs(now: SystemWallClock().millisecondsNow + 3_600_000, maxAttempts: 3)
        runner.wake()
        #expect(await eventually { (try? await store.job(id: id))?.attempts == 2 })
        released.withLock { _ = $0.insert(1) }
        // The first run has ended (its end refused: the job is the second's now).
        #expect(await eventually { logged.lines.withLock { $0.contains("job was taken back before it ended") } })
        guard case .stopping = try await runner.cancel(id) else { Issue.record("the running job was not marked"); return }
        #expect(await eventually(timeout: .seconds(5)) { stopped.withLock { $0 } == [2] }, "the second run stopped by the cancel")
        released.withLock { _ = $0.insert(2) }
        await runner.stop()
    }
}

/// The messages logged, for a test to wait on one.
private final class LoggedLines: Sendable {
    let lines = Mutex<[String]>([])
}

private struct KeptLines: LogHandler {
    let kept: LoggedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String,
        line: UInt
    ) {
        kept.lines.withLock { $0.append(message.description) }
    }
}
