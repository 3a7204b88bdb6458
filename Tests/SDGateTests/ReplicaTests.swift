import Foundation
import GenerationCore
import HTTPServer
import Ledger
import Logging
import Testing
import TestSupport
@testable import SDGateApp

/// Several gateways on one PostgreSQL database. Needs SDGATE_TEST_POSTGRES_URL (`.ci/run` sets it).
/// The exact-hold burst runs on two in-process gateways with a backend that succeeds (the binary has
/// none yet); two `sdgate serve` processes show they start, migrate and meter together.
@Suite("Replicas on one PostgreSQL database", .serialized)
struct ReplicaTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SDGATE_TEST_POSTGRES_URL"] != nil))
    func twoBurstedGatewaysOnOneDatabaseChargeExactlyWhatWasFunded() async throws {
        let url = try await Self.freshDatabase()
        var servers: [(HTTPServer, Int)] = []
        var ledgers: [any Ledger] = []
        for _ in 0..<2 {
            var configuration = GatewayConfiguration()
            configuration.server.host = "127.0.0.1"
            configuration.server.port = 0
            configuration.catalogFile = Repository.path("Config/models.yaml")
            configuration.ledgerDatabase = url
            // Each gateway its own ledger, so its own connection pool: as two replicas.
            let ledger = try await GatewayApp.openLedger(configuration)
            let gate = LedgerGate(ledger: ledger, holdLifetime: .seconds(600), now: SQLiteLedger.systemNow, logger: Logger(label: "test"))
            let server = try GatewayApp(configuration: configuration, logger: Logger(label: "test"), gate: gate, ledger: ledger,
                                        backend: FakeBackend()).makeServer()
            servers.append((server, try server.start().port))
            ledgers.append(ledger)
        }
        let (key, secret) = try await ledgers[0].createKey(NewKey(name: "shared"))
        _ = try await ledgers[1].adjust(keyID: key.id, by: Credits(decimal: "0.4")!, reason: "exactly fifty")
        let burst = try await Command.run("python3", [Repository.path("Tests/SDGateTests/Clients/burst.py"),
                                                      servers.map { String($0.1) }.joined(separator: ","), secret, "200"])
        #expect(burst.status == 0, "\(burst.errors)")
        let summary = try JSONSerialization.jsonObject(with: Data(burst.output.utf8)) as? [String: Any]
        #expect(summary?["statuses"] as? [String: Int] == ["200": 50, "406": 150])
        #expect(try await ledgers[0].balance(keyID: key.id) == Balance(balance: .zero, held: .zero))
        #expect(try await ledgers[1].verify().isEmpty)
        for (server, _) in servers { await server.shutdown() }
    }

    static func freshDatabase() async throws -> String {
        let base = try #require(ProcessInfo.processInfo.environment["SDGATE_TEST_POSTGRES_URL"])
        let database = "replicas_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        #expect(try await Command.run("psql", [base, "-q", "-c", "CREATE DATABASE \(database)"]).status == 0)
        var url = URLComponents(string: base)!
        url.path = "/" + database
        return url.string!
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["SDGATE_TEST_POSTGRES_URL"] != nil))
    func twoServeProcessesShareOneDatabase() async throws {
        let environment = ["SDGATE_LEDGER_DATABASE": try await Self.freshDatabase(), "SDGATE_ADMIN_TOKEN": "replica-test-token"]

        // The two replicas start together and migrate the new database once between them.
        async let first = RunningGateway.start(environment: environment)
        async let second = RunningGateway.start(environment: environment)
        let replicas = try await [first, second]
        // sdxl1.0-txt2img costs 0.008: fund exactly fifty, through the command line on the same database.
        let created = try await RunningGateway.run(["keys", "create", "--name", "shared", "--credits", "0.4", "--json"], environment: environment)
        let secret = try #require((try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any])?["secret"] as? String)

        let ports = replicas.map { String($0.port) }.joined(separator: ",")
        let burst = try await Command.run("python3", [Repository.path("Tests/SDGateTests/Clients/burst.py"), ports, secret, "200"])
        #expect(burst.status == 0, "\(burst.errors)")
        let summary = try JSONSerialization.jsonObject(with: Data(burst.output.utf8)) as? [String: Any]
        // No backend is configured in the binary: every request that got its hold was answered 503
        // and its hold voided; the others were refused for credits. Nothing was charged.
        let statuses = summary?["statuses"] as? [String: Int] ?? [:]
        #expect(Set(statuses.keys).isSubset(of: ["406", "503"]) && statuses.values.reduce(0, +) == 200, "\(statuses)")
        #expect(statuses["503", default: 0] >= 50, "at least the funded fifty were let through")
        for replica in replicas { #expect(try await replica.stop(signal: SIGTERM) == 0) }
        let shown = try await RunningGateway.run(["keys", "list", "--json"], environment: environment)
        let key = (try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [[String: Any]])?.first
        #expect(key?["available"] as? String == "0.4" && key?["held"] as? String == "0")
        let verified = try await RunningGateway.run(["ledger", "verify"], environment: environment)
        #expect(verified.status == 0, "\(verified.output)\(verified.errors)")
    }
}
