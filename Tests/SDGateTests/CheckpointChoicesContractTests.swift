import Foundation
import GatewayAPI
import Ledger
import Logging
import TestSupport
import Testing

@testable import SDGateApp

/// Where A1111's checkpoint picks are kept: this process's sessions, and the database replicas
/// share (PostgreSQL needs SDGATE_TEST_POSTGRES_URL).
@Suite("Checkpoint choices contract")
struct CheckpointChoicesContractTests {
    enum Subject: String, CaseIterable, CustomStringConvertible {
        case memory
        case postgres

        var description: String { rawValue }

        static var available: [Subject] {
            allCases.filter { $0 != .postgres || TestPostgres.url != nil }
        }

        /// Picks, and another view of the same picks, as another replica has it.
        func make() async throws -> (any CheckpointChoices, replica: any CheckpointChoices) {
            switch self {
            case .memory:
                let sessions = A1111Sessions()
                return (sessions, sessions)
            case .postgres:
                let url = try await TestPostgres.freshDatabase("checkpoint_choices")
                let (first, second) = (try await PostgresLedger(url: url), try await PostgresLedger(url: url))
                let logger = Logger(label: "test")
                return (
                    DatabaseCheckpoints(store: first, fallback: A1111Sessions(), logger: logger),
                    DatabaseCheckpoints(store: second, fallback: A1111Sessions(), logger: logger)
                )
            }
        }
    }

    @Test(arguments: Subject.available)
    func aPickIsTheKeysOwnAndTheLatestStands(subject: Subject) async throws {
        let (choices, replica) = try await subject.make()
        #expect(await choices.checkpoint(of: "k1") == nil)
        await choices.setCheckpoint("sd3-medium", for: "k1")
        #expect(await replica.checkpoint(of: "k1") == "sd3-medium")
        #expect(await replica.checkpoint(of: "k2") == nil)
        await replica.setCheckpoint("sdxl", for: "k1")
        #expect(await choices.checkpoint(of: "k1") == "sdxl")
    }
}
