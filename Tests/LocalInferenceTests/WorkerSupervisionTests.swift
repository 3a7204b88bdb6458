import Foundation
import GenerationCore
import Logging
import TestSupport
import Testing

@testable import LocalInference

/// Supervision of workers that misbehave, with a stub worker (`Support/stub_worker`) that speaks the
/// protocol without diffusers and misbehaves as files in its folder tell it. Needs only python3.
@Suite("Worker supervision", .serialized)
struct WorkerSupervisionTests {
    /// A folder for one stub's files, and a backend running the stub from it with quick health checks.
    static func stub(
        answering generate: String? = nil, deadline: Duration = .seconds(300), startTimeout: Duration = .seconds(300), slowStart: Bool = false
    ) throws -> (LocalBackend, URL) {
        let folder = Scratch.path("stub-worker")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if slowStart { _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("slow_start").path, contents: nil) }
        if let generate { try generate.write(to: folder.appendingPathComponent("generate.json"), atomically: true, encoding: .utf8) }
        var settings = LocalBackend.Settings()
        settings.healthCheckInterval = .milliseconds(100)
        // Long enough for a stub that a loaded machine (the whole suite runs at once on two cores,
        // fuzz targets building beside it) is slow to schedule: three checks missed in a row restart
        // it, and at one second a stub on CI was restarted over and over before it ever joined.
        settings.healthCheckTimeout = .seconds(3)
        settings.maxRestartDelay = .seconds(1)
        settings.deadline = deadline
        settings.startTimeout = startTimeout
        let backend = LocalBackend(settings: settings, logger: Logger(label: "test"))
        backend.spawn(
            WorkerCommand(
                workerFolder: Repository.path("Tests/LocalInferenceTests/Support/stub_worker"),
                modelsFile: folder.appendingPathComponent("models.yaml").path))
        return (backend, folder)
    }

    static let request = GenerationRequest(
        model: "sd3-med-img2img", task: .textToImage, family: .sd3, prompt: "a fox", width: 64, height: 64,
        steps: 2, guidanceScale: 5, seed: 1)

    /// The process ids the stub's starts recorded, in order.
    static func starts(in folder: URL) -> [Int32] {
        ((try? String(contentsOf: folder.appendingPathComponent("pids"), encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    @Test func aWorkerWhoseHealthCheckHangsIsKilledAndRestarted() async throws {
        let (backend, folder) = try Self.stub()
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        let first = try #require(Self.starts(in: folder).first)

        // Alive, but its health check never answers: it leaves the pool and its process is killed.
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("hang").path, contents: nil)
        #expect(await eventually(timeout: .seconds(30)) { backend.workersUp == 0 })
        #expect(await eventually(timeout: .seconds(30)) { !processExists(first) && Self.starts(in: folder).count >= 2 })

        // Once checks pass again, the restarted worker joins the pool.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("hang"))
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        let last = try #require(Self.starts(in: folder).last)
        #expect(last != first && processExists(last))

        await backend.shutdown()
        #expect(Self.starts(in: folder).allSatisfy { !processExists($0) }, "no worker outlives the backend")
    }

    /// A worker that never says where it listens (a hung download or device) is killed and started
    /// again: requests waited for it, and no alert told of it.
    @Test func aWorkerThatDoesNotStartListeningInTimeIsKilledAndStartedAgain() async throws {
        // Long enough for Python to start on a loaded machine: a second was not, under the whole
        // suite, and each start was killed before it could write its pid.
        let (backend, folder) = try Self.stub(startTimeout: .seconds(8), slowStart: true)
        #expect(await eventually(timeout: .seconds(60)) { Self.starts(in: folder).count >= 2 })
        let first = try #require(Self.starts(in: folder).first)
        #expect(await eventually(timeout: .seconds(30)) { !processExists(first) }, "killed")
        try FileManager.default.removeItem(at: folder.appendingPathComponent("slow_start"))
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        await backend.shutdown()
    }

    @Test func aWorkerStuckOnAJobPastItsDeadlineIsKilledAndRestarted() async throws {
        let (backend, folder) = try Self.stub(deadline: .seconds(1))
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        let first = try #require(Self.starts(in: folder).first)

        // The job never ends: its client is answered at the deadline, and the worker, busy with it
        // for another whole deadline, is killed and started again.
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("stuck").path, contents: nil)
        await #expect(throws: InferenceError.timedOut) { try await backend.generate(Self.request) }
        #expect(backend.workersUp == 0)
        #expect(await eventually(timeout: .seconds(30)) { !processExists(first) && Self.starts(in: folder).count >= 2 })

        // The new process, with no job, joins the pool.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("stuck"))
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        await backend.shutdown()
    }

    /// A generation answered 504 at its deadline is not charged: its worker is told to stop it (at
    /// its next step, or before it starts if it still waits there for a batch) by the id it was
    /// sent with, rather than run it on unpaid. It ran on, with no id to be stopped by.
    @Test func aGenerationPastItsDeadlineIsStoppedOnItsWorker() async throws {
        let (backend, folder) = try Self.stub(deadline: .seconds(1))
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("stuck").path, contents: nil)
        await #expect(throws: InferenceError.timedOut) { try await backend.generate(Self.request) }
        func lines(_ name: String) -> [String] {
            ((try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        let sent = try #require(lines("request_ids").first)
        #expect(sent != "None" && !sent.isEmpty, "a generation's own id")
        #expect(await eventually(timeout: .seconds(30)) { lines("cancels") == [sent] }, "\(lines("cancels"))")
        try FileManager.default.removeItem(at: folder.appendingPathComponent("stuck"))
        await backend.shutdown()
    }

    @Test(arguments: [
        (
            #"{"status": 422, "body": {"error": {"code": "unsupported", "message": "sampler 'lcm' is not supported on SD3"}}}"#,
            InferenceError.unsupported("sampler 'lcm' is not supported on SD3")
        ),
        (
            #"{"status": 503, "body": {"error": {"code": "out_of_memory", "message": "CUDA out of memory"}}}"#,
            InferenceError.busy(retryAfter: .seconds(10))
        ),
        (
            #"{"status": 503, "body": {"error": {"code": "busy", "message": "a generation is already running"}}}"#,
            InferenceError.busy(retryAfter: .seconds(1))
        ),
        (
            #"{"status": 500, "body": {"error": {"code": "failed", "message": "weights cannot be loaded"}}}"#,
            InferenceError.failed("weights cannot be loaded")
        ),
    ])
    func aWorkersTypedErrorReachesTheGatewayAsItsKindAndTheWorkerServesOn(answer: String, expected: InferenceError) async throws {
        let (backend, _) = try Self.stub(answering: answer)
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        for _ in 1...2 {
            await #expect(throws: expected) { try await backend.generate(Self.request) }
        }
        // Still (or, after a missed health check on a busy machine, again) up.
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        await backend.shutdown()
    }

    /// A worker's error is a code and a sentence: a longer error body is not read, let alone built
    /// into values (64 MiB of them held the gateway at 2 GB).
    @Test func aWorkersLongErrorBodyIsNotRead() async throws {
        let values = String(repeating: "0,", count: 100_000) + "0"
        let answer = #"{"status": 500, "body": {"error": {"code": "failed", "message": "read"}, "junk": [\#(values)]}}"#
        let (backend, _) = try Self.stub(answering: answer)
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        await #expect(throws: InferenceError.failed("the local worker failed (HTTP 500)")) { try await backend.generate(Self.request) }
        await backend.shutdown()
    }

    /// A worker answers; it does not send the gateway elsewhere with the member's request.
    @Test func aWorkersRedirectIsNotFollowed() async throws {
        let (backend, folder) = try Self.stub()
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        // To itself, elsewhere: each redirect followed would be one more POST it counts.
        let answer = #"{"status": 307, "body": {}, "headers": {"Location": "/elsewhere"}}"#
        try answer.write(to: folder.appendingPathComponent("generate.json"), atomically: true, encoding: .utf8)
        await #expect(throws: InferenceError.failed("the local worker failed (HTTP 307)")) { try await backend.generate(Self.request) }
        let posts = try String(contentsOf: folder.appendingPathComponent("generating"), encoding: .utf8)
        #expect(posts == "generate\n", "one POST, not followed")
        await backend.shutdown()
    }

    /// Once a worker has a job, the job runs to its end and its result comes back even if the
    /// request's client left (its task was cancelled): the GPU time was spent, so it is charged.
    @Test func aStartedJobsResultComesBackThoughItsClientLeft() async throws {
        let answer = #"{"status": 200, "body": {"images": [{"data": "aW1hZ2U=", "format": "png"}], "seed": 1, "generation_time": 0.5}}"#
        let (backend, folder) = try Self.stub(answering: answer)
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        let stuck = folder.appendingPathComponent("stuck")
        _ = FileManager.default.createFile(atPath: stuck.path, contents: nil)
        let request = Task { try await backend.generate(Self.request) }
        #expect(await eventually(timeout: .seconds(30)) { FileManager.default.fileExists(atPath: folder.appendingPathComponent("generating").path) })
        request.cancel()
        try FileManager.default.removeItem(at: stuck)
        let result = try await request.value
        #expect(result.images == [GeneratedImage(bytes: Array("image".utf8), format: .png)] && result.seed == 1)
        await backend.shutdown()
    }

    /// A job cancelled while it waits for a worker leaves the queue at once, uncharged: it held its
    /// job runner's slot until the worker came free, or for `max_wait` (five minutes).
    @Test func aRequestStoppedWhileItWaitsLeavesTheQueueAtOnce() async throws {
        let (backend, folder) = try Self.stub()
        #expect(await eventually(timeout: .seconds(60)) { backend.workersUp == 1 })
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("stuck").path, contents: nil)
        let busy = Task { try await backend.generate(Self.request) }
        #expect(await eventually(timeout: .seconds(30)) { backend.running == 1 })
        var waiting = Self.request
        waiting.stop = GenerationStop(id: "waiting-job")
        let waiter = Task { [waiting] in try await backend.generate(waiting) }
        #expect(await eventually(timeout: .seconds(30)) { backend.queued == 1 })
        waiting.stop?.request()
        #expect(await eventually(timeout: .seconds(10)) { backend.queued == 0 }, "out of the queue")
        await #expect(throws: InferenceError.failed("the generation was cancelled before it started: no step ran")) {
            try await waiter.value
        }
        try FileManager.default.removeItem(at: folder.appendingPathComponent("stuck"))
        _ = try await busy.value
        await backend.shutdown()
    }

    /// A worker whose `max_batch` changed between two health checks (a remote one started again
    /// with another) has its places counted anew: it kept the number it had when it joined.
    @Test func aWorkerWhoseCapacityChangedHasItsPlacesCountedAnew() async throws {
        let (backend, folder) = try Self.stub()
        #expect(await eventually(timeout: .seconds(30)) { backend.workersUp == 1 && backend.places == 1 })
        try "2".write(to: folder.appendingPathComponent("max_batch"), atomically: true, encoding: .utf8)
        #expect(await eventually(timeout: .seconds(30)) { backend.places == 2 })
        // Both places are handed out: two requests at once on the one worker.
        let stuck = folder.appendingPathComponent("stuck")
        _ = FileManager.default.createFile(atPath: stuck.path, contents: nil)
        let requests = (1...2).map { _ in Task { try await backend.generate(Self.request) } }
        #expect(await eventually(timeout: .seconds(30)) { backend.running == 2 && backend.queued == 0 })
        try FileManager.default.removeItem(at: stuck)
        for request in requests { _ = try await request.value }
        await backend.shutdown()
    }

    @Test func aRequestWaitsNoLongerThanMaxWait() async throws {
        var settings = LocalBackend.Settings()
        settings.maxWait = .milliseconds(200)
        // No worker at all: the request waits, then is answered busy.
        let backend = LocalBackend(settings: settings, logger: Logger(label: "test"))
        let request = GenerationRequest(
            model: "m", task: .textToImage, family: .sd3, prompt: "a fox", width: 64, height: 64,
            steps: 2, guidanceScale: 5, seed: 1)
        await #expect(throws: InferenceError.busy(retryAfter: .seconds(5))) { try await backend.generate(request) }
        #expect(backend.queued == 0)
        await backend.shutdown()
    }
}
