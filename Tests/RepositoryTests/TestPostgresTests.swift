import Foundation
import TestSupport
import Testing

/// The PostgreSQL cases run when `SDGATE_TEST_POSTGRES_URL` names a server and are skipped when it
/// is unset or empty (`SDGATE_TEST_POSTGRES_URL= swift test` turns them off), and every test asks
/// `TestPostgres` rather than reading the variable itself, so that all of them agree.
@Suite struct TestPostgresTests {
    @Test func anEmptyOrMissingURLMeansNoServer() {
        #expect(TestPostgres.url(in: [:]) == nil)
        #expect(TestPostgres.url(in: [TestPostgres.variable: ""]) == nil)
        #expect(TestPostgres.url(in: [TestPostgres.variable: "postgres://u@h/d"]) == "postgres://u@h/d")
    }

    @Test func onlyTestPostgresReadsTheVariable() async throws {
        let targets = try await Manifest.load().targets.filter { $0.path.hasPrefix("Tests/") }
        var offenders: [String] = []
        for file in try targets.flatMap(SwiftFiles.of) where file.lastPathComponent != "TestPostgres.swift" {
            if try String(contentsOf: file, encoding: .utf8).contains("environment[\"\(TestPostgres.variable)\"]") {
                offenders.append(file.lastPathComponent)
            }
        }
        #expect(targets.count > 5, "the manifest lists the test targets")
        #expect(offenders.isEmpty, "ask TestPostgres.url: \(offenders)")
    }
}
