import Foundation
import Jobs
import TestSupport
import Testing

@testable import SDGateApp

/// Where generated images are kept: `outputs.store` and `outputs.folder`, refused clearly when they
/// cannot be honoured.
@Suite("Output placement")
struct OutputPlacementTests {
    @Test func anUnknownStoreIsRefusedNamingTheKeyAndTheChoices() async throws {
        let result = try await RunningGateway.run(["config", "check"], environment: ["SDGATE_OUTPUTS_STORE": "s3"])
        #expect(result.status != 0)
        #expect(result.errors.contains("SDGATE_OUTPUTS_STORE: outputs.store: must be files or database"), "\(result.errors)")
    }

    /// A SQLite ledger has no table every replica reads: asking for one stops `serve` before it listens.
    @Test func theDatabaseStoreWithASQLiteLedgerStopsServe() async throws {
        let result = try await RunningGateway.run(["serve", "--port", "0"], environment: ["SDGATE_OUTPUTS_STORE": "database"])
        #expect(result.status != 0)
        #expect(
            (result.output + result.errors).contains("outputs.store: database needs a PostgreSQL ledger"), "\(result.output)\(result.errors)")
    }

    /// Files in the configured folder (one every replica mounts), whichever the ledger.
    @Test func filesGoToTheConfiguredFolder() async throws {
        let data = Scratch.path("placement")
        var configuration = GatewayConfiguration()
        configuration.dataDirectory = data.path
        configuration.outputStore = .files
        configuration.outputFolder = data.appendingPathComponent("shared").path
        let ledger = try await GatewayApp.openLedger(configuration, ifMissing: .create)
        let app = GatewayApp(configuration: configuration, logger: .init(label: "test"), gate: TestGate(), ledger: ledger)
        let store = try #require(try app.makeOutputStore(ledger: ledger) as? OutputStore)
        #expect(store.folder.path == configuration.outputFolder)
        let name = OutputStore.newName(.png)
        try store.save([1, 2, 3], named: name)
        #expect(FileManager.default.fileExists(atPath: configuration.outputFolder + "/" + name))
    }
}
