import TestSupport
import Testing

/// The sources are formatted as `.swift-format` says, so that the test command catches a change that
/// was not formatted (docs/development.md gives the command that formats).
@Suite struct FormatTests {
    @Test(.enabled("`swift format` is not in this toolchain, so formatting is not checked") { await FormatTests.swiftFormatIsInstalled() })
    func theSourcesAreFormatted() async throws {
        let paths = ["Sources", "Tests", "Package.swift"].map(Repository.path)
        let lint = try await Command.run(
            "swift", ["format", "lint", "--strict", "--parallel", "--configuration", Repository.path(".swift-format"), "--recursive"] + paths)
        #expect(lint.status == 0, "swift format lint found code that is not formatted:\n\(lint.output)\(lint.errors)")
    }

    static func swiftFormatIsInstalled() async -> Bool {
        (try? await Command.run("swift", ["format", "--version"]).status) == 0
    }
}
