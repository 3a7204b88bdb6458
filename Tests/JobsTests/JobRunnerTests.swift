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
            })
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
    }
}
