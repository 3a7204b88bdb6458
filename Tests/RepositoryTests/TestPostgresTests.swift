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
        let (targets, offenders) = try await TestSources.naming(
            any: ["environment[\"\(TestPostgres.variable)\"]"], except: ["TestPostgres.swift"])
        #expect(targets > 5, "the manifest lists the test targets")
        #expect(offenders.isEmpty, "ask TestPostgres.url: \(offenders)")
    }
}
