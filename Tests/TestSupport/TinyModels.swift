package import Foundation

/// The worker tests' tiny random pipelines, for tests that run real worker processes. Needs the
/// worker's Python stack: `.ci/run` installs it (a CI run without it fails); locally set
/// SDGATE_TEST_WORKER_PYTHON to a Python that has it.
package enum TinyModels {
    static let environment = ProcessInfo.processInfo.environment
    /// Whether tests with real workers run here.
    package static let enabled = environment["CI"] != nil || environment["SDGATE_TEST_WORKER_PYTHON"] != nil
    package static let python = environment["SDGATE_TEST_WORKER_PYTHON"] ?? "python3"

    /// The pipelines and a models file over them, built once per test process; the models file's path.
    package static var modelsFile: String {
        get async throws { try await built.value }
    }

    /// A real, decodable 64×64 PNG beside the models file, for the image-to-image models.
    package static var inputImage: URL {
        get async throws { URL(fileURLWithPath: try await modelsFile).deletingLastPathComponent().appendingPathComponent("input.png") }
    }

    private static let built: Task<String, any Error> = Task {
        let root = Scratch.path("tiny-models").path
        let result = try await Command.run(
            python, [Repository.path("Tests/LocalInferenceTests/Support/tiny_models.py"), root],
            environment: ["OMP_NUM_THREADS": "1"])
        guard result.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: result.errors]) }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
