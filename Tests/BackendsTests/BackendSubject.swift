import Backends
import Foundation
import GenerationCore
import LocalInference
import Logging
import MetricsTestKit
import TestSupport
import Testing
import UpstreamProxy

/// Every kind of backend the gateway routes to, each over its test double: the stub backend of
/// these tests, an upstream over the fake Segmind and ModelsLab services, and the local workers
/// running the stub worker (which speaks the worker protocol without diffusers; needs python3).
enum BackendSubject: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case stub, segmind, modelslab, local

    var testDescription: String { rawValue }

    /// What the contract needs of one subject: the backend, and the levers that make it fail or
    /// keep a request it was sent waiting.
    struct Harness: Sendable {
        let backend: any RoutableBackend
        /// Makes every request from now on fail after it was sent; `heal` undoes it.
        let breakIt: @Sendable () throws -> Void
        let heal: @Sendable () throws -> Void
        /// Keeps every request sent from now on waiting until `release`.
        let hold: @Sendable () throws -> Void
        /// Whether a request is now waiting in a hold.
        let isHolding: @Sendable () -> Bool
        let release: @Sendable () throws -> Void
        /// Secrets and addresses that must never reach a client through an error message.
        let secrets: [String]
        let close: @Sendable () async -> Void
    }

    static let key = "team_key_0123456789abcdef"

    /// - Parameter deadline: the most one generation may take on this backend.
    private func start(deadline: Duration, metrics: TestMetrics = TestMetrics()) async throws -> Harness {
        switch self {
        case .stub:
            let stub = StubBackend()
            return Harness(
                backend: stub, breakIt: { stub.fail(.failed(.failed("the stub failed"))) },
                heal: { stub.fail(nil) }, hold: { stub.hold() },
                isHolding: { stub.holding > 0 }, release: { stub.release() }, secrets: [], close: {})
        case .segmind, .modelslab:
            let fake: FakeUpstream = self == .segmind ? try FakeSegmindUpstream(key: Self.key) : try FakeModelsLabUpstream(key: Self.key)
            let upstream = Upstream(
                name: rawValue, dialect: self == .segmind ? .segmind : .modelslab, baseURL: fake.baseURL,
                key: UpstreamKey(Self.key), deadline: deadline)
            let backend = UpstreamBackend(upstream, logger: Logger(label: "test"), metrics: metrics)
            return Harness(
                backend: backend, breakIt: { fake.misbehave(.serverError) },
                heal: { fake.misbehave(nil) }, hold: { fake.misbehave(.wait) },
                isHolding: { fake.stalledCount > 0 }, release: { fake.misbehave(nil) },
                secrets: [Self.key, "127.0.0.1", String(fake.port)],
                close: {
                    await backend.shutdown(); await fake.shutdown()
                })
        case .local:
            let folder = Scratch.path("contract-worker")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            var settings = LocalBackend.Settings()
            settings.deadline = deadline
            settings.healthCheckInterval = .milliseconds(100)
            let backend = LocalBackend(settings: settings, logger: Logger(label: "test"), metrics: metrics)
            backend.spawn(
                WorkerCommand(
                    workerFolder: Repository.path("Tests/LocalInferenceTests/Support/stub_worker"),
                    modelsFile: folder.appendingPathComponent("models.yaml").path))
            #expect(await eventually(timeout: .seconds(30)) { backend.workersUp == 1 }, "the stub worker did not come up")
            let file = { @Sendable (name: String) in folder.appendingPathComponent(name) }
            let failure = #"{"status": 500, "body": {"error": {"code": "failed", "message": "weights cannot be loaded"}}}"#
            return Harness(
                backend: backend, breakIt: { try failure.write(to: file("generate.json"), atomically: true, encoding: .utf8) },
                heal: { try FileManager.default.removeItem(at: file("generate.json")) },
                hold: { _ = FileManager.default.createFile(atPath: file("stuck").path, contents: nil) },
                isHolding: { FileManager.default.fileExists(atPath: file("generating").path) },
                release: { try FileManager.default.removeItem(at: file("stuck")) },
                secrets: [folder.path, "127.0.0.1"], close: { await backend.shutdown() })
        }
    }

    /// Runs `body` on a started harness and closes it however `body` ends (an upstream's HTTP
    /// client must be shut down before it goes).
    func with(deadline: Duration = .seconds(60), _ body: (Harness) async throws -> Void) async throws {
        let harness = try await start(deadline: deadline)
        do {
            try await body(harness)
        } catch {
            await harness.close()
            throw error
        }
        await harness.close()
    }

    /// A text-to-image request every subject can serve: two samples of an unsquare size, a seed no
    /// backend picks by itself.
    static let request = GenerationRequest(
        model: "sd3-med-txt2img", task: .textToImage, family: .sd3, prompt: "a lighthouse at dusk",
        width: 64, height: 48, samples: 2, steps: 2, guidanceScale: 5, seed: 8_675_309)
}
