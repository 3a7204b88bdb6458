import Foundation
import GenerationCore
import HTTPServer
import Ledger
import Logging
import TestSupport
import Testing

@testable import SDGateApp

/// Several gateways on one PostgreSQL database. Needs SDGATE_TEST_POSTGRES_URL (`.ci/run` sets it).
/// The exact-hold burst runs on two in-process gateways with a backend in the tests, and on two
/// `sdgate serve` processes proxying to a fake upstream.
@Suite("Replicas on one PostgreSQL database", .serialized)
struct ReplicaTests {
    @Test(.enabled(if: TestPostgres.url != nil))
    func twoBurstedGatewaysOnOneDatabaseChargeExactlyWhatWasFunded() async throws {
        let url = try await TestPostgres.freshDatabase("replicas")
        var servers: [(HTTPServer, Int)] = []
        var ledgers: [any Ledger] = []
        for _ in 0..<2 {
            var configuration = GatewayConfiguration()
            configuration.server.host = "127.0.0.1"
            configuration.server.port = 0
            configuration.catalogFile = Repository.path("Config/models.yaml")
            configuration.ledgerDatabase = url
            // Each gateway its own ledger, so its own connection pool: as two replicas.
            let ledger = try await GatewayApp.openLedger(configuration, ifMissing: .create)
            let gate = LedgerGate(
                ledger: ledger, holdLifetime: .seconds(600), clock: SystemWallClock(), logger: Logger(label: "test"),
                metricsFactory: GatewayMetrics().factory)
            let server = try GatewayApp(
                configuration: configuration, logger: Logger(label: "test"), gate: gate, ledger: ledger,
                backend: FakeBackend()
            ).makeServer()
            servers.append((server, try server.start().port))
            ledgers.append(ledger)
        }
        let (key, secret) = try await ledgers[0].createKey(NewKey(name: "shared"))
        _ = try await ledgers[1].adjust(.key(key.id), by: Credits(decimal: "0.4")!, reason: "exactly fifty")
        let burst = try await Command.run(
            "python3",
            [
                Repository.path("Tests/SDGateTests/Clients/burst.py"),
                servers.map { String($0.1) }.joined(separator: ","), secret, "200",
            ])
        #expect(burst.status == 0, "\(burst.errors)")
        let summary = try JSONSerialization.jsonObject(with: Data(burst.output.utf8)) as? [String: Any]
        #expect(summary?["statuses"] as? [String: Int] == ["200": 50, "406": 150])
        #expect(try await ledgers[0].balance(of: .key(key.id)) == Balance(balance: .zero, held: .zero))
        #expect(try await ledgers[1].verify().isEmpty)
        for (server, _) in servers { await server.shutdown() }
    }

    @Test(.enabled(if: TestPostgres.url != nil))
    func twoServeProcessesShareOneDatabase() async throws {
        let upstream = try FakeSegmindUpstream()
        let environment = try ProxiedGateway.environment(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]],
            base: ["SDGATE_LEDGER_DATABASE": try await TestPostgres.freshDatabase("replicas"), "SDGATE_ADMIN_TOKEN": "replica-test-token"])

        // The two replicas start together and migrate the new database once between them.
        async let first = ProxiedGateway.start(environment: environment)
        async let second = ProxiedGateway.start(environment: environment)
        let replicas = try await [first, second]
        // sdxl1.0-txt2img costs 0.008: fund exactly fifty, through the command line on the same database.
        let key = try await replicas[0].createKey(name: "shared", credits: "0.4")

        let ports = replicas.map { String($0.port) }.joined(separator: ",")
        let burst = try await Command.run("python3", [Repository.path("Tests/SDGateTests/Clients/burst.py"), ports, key.secret, "200"])
        #expect(burst.status == 0, "\(burst.errors)")
        let summary = try JSONSerialization.jsonObject(with: Data(burst.output.utf8)) as? [String: Any]
        #expect(summary?["statuses"] as? [String: Int] == ["200": 50, "406": 150])
        #expect(upstream.received.count == 50, "only the funded fifty reached the upstream")
        for replica in replicas { #expect(try await replica.stop() == 0) }
        #expect(try await replicas[0].credits(of: key.id) == ("0", "0"))
        let verified = try await replicas[1].verify()
        #expect(verified.status == 0, "\(verified.output)\(verified.errors)")
        await upstream.shutdown()
    }
}
