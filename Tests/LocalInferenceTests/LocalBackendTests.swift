import Foundation
import GenerationCore
import Logging
import MetricsTestKit
import Synchronization
import TestSupport
import Testing

@testable import LocalInference

/// The local backend with real worker processes on the worker tests' tiny random pipelines (see
/// `TinyModels` for what they need).
@Suite("Local backend with real workers", .serialized)
struct LocalBackendTests {
    static let enabled = TinyModels.enabled
    static let python = TinyModels.python

    static func backend(
        workers: Int = 1, metrics: TestMetrics = TestMetrics(), workerArguments: [String] = [],
        configure: (inout LocalBackend.Settings) -> Void = { _ in }
    ) async throws -> LocalBackend {
        let models = try await TinyModels.modelsFile
        var settings = LocalBackend.Settings()
        configure(&settings)
        let backend = LocalBackend(settings: settings, logger: Logger(label: "test"), metrics: metrics)
        for _ in 0..<workers {
            backend.spawn(
                WorkerCommand(
                    python: python, workerFolder: Repository.path("Worker"), modelsFile: models,
                    extraArguments: ["--device", "cpu", "--threads", "1"] + workerArguments))
        }
        #expect(await eventually(timeout: .seconds(120)) { backend.workersUp == workers }, "the workers did not come up")
        return backend
    }

    static func request(
        _ model: String, family: ModelFamily, task: GenerationTask = .imageToImage, steps: Int = 2,
        key: String = "kaaaaaaaa", seed: UInt64 = 7
    ) async throws -> GenerationRequest {
        let png = Array(try Data(contentsOf: try await TinyModels.inputImage))
        var request = GenerationRequest(
            model: model, task: task, family: family, prompt: "a lighthouse at dusk",
            image: task == .imageToImage ? InputImage(bytes: png, info: ImageInspector.inspect(png)!) : nil,
            width: 64, height: 64, steps: steps, guidanceScale: 5, strength: task == .imageToImage ? 0.8 : nil, seed: seed)
        request.requester = key
        return request
    }

    @Test(.enabled(if: enabled))
    func everyFamilyGeneratesAJPEGAndAKilledWorkerComesBack() async throws {
        let backend = try await Self.backend()
        for (model, family, task) in [
            ("sd1.5-img2img", ModelFamily.sd15, GenerationTask.imageToImage), ("sdxl-img2img", .sdxl, .imageToImage),
            ("sdxl1.0-txt2img", .sdxl, .textToImage), ("sd3-med-img2img", .sd3, .imageToImage),
        ] {
            let result = try await backend.generate(try await Self.request(model, family: family, task: task))
            let image = try #require(result.images.first, "\(model)")
            let info = ImageInspector.inspect(image.bytes)
            #expect(info?.format == .jpeg && info?.width == 64 && info?.height == 64, "\(model)")
            #expect(result.seed == 7)
        }
        // A worker that dies is restarted, and the next request is served.
        let first = try #require(backend.workerProcesses.first)
        #expect(kill(first, SIGKILL) == 0)
        #expect(await eventually(timeout: .seconds(30)) { backend.workersUp == 0 })
        #expect(await eventually(timeout: .seconds(120)) { backend.workersUp == 1 })
        let second = try #require(backend.workerProcesses.first)
        #expect(second != first)
        let again = try await backend.generate(try await Self.request("sd1.5-img2img", family: .sd15))
        #expect(again.images.count == 1)
        await backend.shutdown()
        #expect(!processExists(second), "the worker ends with the backend")
    }

    @Test(.enabled(if: enabled))
    func aBurstFromOneKeyDelaysAnotherKeyByAtMostOneJob() async throws {
        let metrics = TestMetrics()
        let backend = try await Self.backend(metrics: metrics) { $0.queueLimitPerKey = 2 }
        let depth = try metrics.expectGauge("sdgate_worker_queue_depth")
        let finished = FinishOrder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 1...3 {
                group.addTask {
                    _ = try await backend.generate(
                        try await Self.request("sd1.5-img2img", family: .sd15, steps: 40, key: "burst", seed: UInt64(index)))
                    finished.append("burst \(index)")
                }
                #expect(await eventually { backend.queued == index - 1 }, "one runs, the others wait")
                #expect(depth.lastValue == Double(index - 1), "the gauge shows the queue")
            }
            // The burst's share of the queue is full.
            await #expect(throws: InferenceError.busy(retryAfter: .seconds(5))) {
                try await backend.generate(try await Self.request("sd1.5-img2img", family: .sd15, key: "burst"))
            }
            group.addTask {
                _ = try await backend.generate(try await Self.request("sd1.5-img2img", family: .sd15, key: "other"))
                finished.append("other")
            }
            try await group.waitForAll()
        }
        // "other" came after three of the burst's, but only the one already running went first.
        #expect(finished.names.firstIndex(of: "other") == 1, "\(finished.names)")
        // The metrics saw it: two of the burst and "other" waited (the first started at once), the
        // refused one is not a wait, and the queue is empty again.
        #expect(depth.lastValue == 0)
        #expect(try metrics.expectGauge("sdgate_workers_up").lastValue == 1)
        let waits = try metrics.expectTimer("sdgate_worker_queue_wait_seconds").values
        #expect(waits.count == 4, "\(waits)")
        #expect(waits.filter { $0 > 1_000_000 }.count >= 3, "the queued requests waited for a whole generation: \(waits)")
        await backend.shutdown()
    }
}

extension LocalBackendTests {
    @Test(.enabled(if: enabled))
    func aBatchingWorkerTakesSeveralRequestsAndAnotherKeyWaitsAtMostOneBatch() async throws {
        // Health checks far apart: the worker is held with SIGSTOP while the requests line up, so
        // that the counts below are seen as they are, not timed.
        let backend = try await Self.backend(workerArguments: ["--max-batch", "2", "--batch-window-ms", "200"]) {
            $0.queueLimitPerKey = 8
            $0.healthCheckInterval = .seconds(3600)
        }
        let worker = try #require(backend.workerProcesses.first)
        #expect(kill(worker, SIGSTOP) == 0)
        let finished = FinishOrder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 1...5 {
                group.addTask {
                    _ = try await backend.generate(
                        try await Self.request("sd1.5-img2img", family: .sd15, steps: 20, key: "burst", seed: UInt64(index)))
                    finished.append("burst \(index)")
                }
            }
            #expect(await eventually { backend.queued + backend.running == 5 })
            group.addTask {
                _ = try await backend.generate(try await Self.request("sd1.5-img2img", family: .sd15, steps: 20, key: "other"))
                finished.append("other")
            }
            // All six reached the backend; the worker took two at once (its health says max_batch 2),
            // and only the rest wait.
            #expect(await eventually { backend.queued + backend.running == 6 })
            #expect(backend.running == 2 && backend.queued == 4, "\(backend.running) sent, \(backend.queued) waiting")
            #expect(kill(worker, SIGCONT) == 0)
            try await group.waitForAll()
        }
        // "other" came after five of the burst's, while the first two were on the worker: it gets
        // a place in the next batch, before the burst's three others.
        let position = try #require(finished.names.firstIndex(of: "other"))
        #expect((2...3).contains(position), "\(finished.names)")
        await backend.shutdown()
    }
}

/// The order in which requests finished.
final class FinishOrder: Sendable {
    private let order = Mutex<[String]>([])
    var names: [String] { order.withLock { $0 } }
    func append(_ name: String) { order.withLock { $0.append(name) } }
}
