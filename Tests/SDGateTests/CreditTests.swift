import Foundation
import GatewayAPI
import GenerationCore
import HTTPServer
import Ledger
import Logging
import TestSupport
import Testing

@testable import SDGateApp

/// Keys and credits through the whole gateway: a real SQLite ledger, real HTTP clients.
@Suite("Credits end to end", .serialized)
struct CreditTests {
    static func start(backend: FakeBackend) async throws -> (HTTPServer, Int, any Ledger) {
        var configuration = GatewayConfiguration()
        configuration.server.host = "127.0.0.1"
        configuration.server.port = 0
        configuration.catalogFile = Repository.path("Config/models.yaml")
        configuration.dataDirectory = Scratch.path("sdgate").path
        let ledger = try await GatewayApp.openLedger(configuration, ifMissing: .create)
        let gate = LedgerGate(
            ledger: ledger, holdLifetime: .seconds(600), clock: SystemWallClock(), logger: Logger(label: "test"),
            metricsFactory: GatewayMetrics().factory)
        let app = GatewayApp(configuration: configuration, logger: Logger(label: "test"), gate: gate, ledger: ledger, backend: backend)
        let server = try app.makeServer()
        return (server, try server.start().port, ledger)
    }

    @Test func twoHundredConcurrentRequestsOnAKeyFundedForFiftyGetFifty() async throws {
        let (server, port, ledger) = try await Self.start(backend: FakeBackend())
        let (key, secret) = try await ledger.createKey(NewKey(name: "burst"))
        // sdxl1.0-txt2img at its defaults costs 0.008: fund exactly fifty.
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "0.4")!, reason: "fifty requests")
        let result = try await Command.run("python3", [Repository.path("Tests/SDGateTests/Clients/burst.py"), "\(port)", secret, "200"])
        #expect(result.status == 0, "\(result.errors)")
        let summary = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(summary?["statuses"] as? [String: Int] == ["200": 50, "406": 150])
        #expect(summary?["min_remaining"] as? Double == 0)
        #expect(try await ledger.balance(of: .key(key.id)) == Balance(balance: .zero, held: .zero))
        #expect(try await ledger.verify().isEmpty)
        await server.shutdown()
    }

    @Test func failuresAreNotChargedAndEveryAnswerShowsTheRemainingCredits() async throws {
        let backend = FakeBackend()
        let (server, port, ledger) = try await Self.start(backend: backend)
        let (key, secret) = try await ledger.createKey(NewKey(name: "careful", models: ["sdxl1.0-txt2img"]))
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "1")!, reason: "top-up")
        func post(_ slug: String, _ body: String) async throws -> (Int, String?) {
            let result = try await Command.run(
                "curl",
                [
                    "-sS", "-o", "/dev/null", "-D", "-", "-H", "x-api-key: \(secret)",
                    "-H", "Content-Type: application/json", "-d", body,
                    "http://127.0.0.1:\(port)/v1/\(slug)",
                ])
            let lines = result.output.split(separator: "\r\n")
            let status = Int(lines.first?.split(separator: " ")[1] ?? "") ?? 0
            let remaining = lines.first { $0.lowercased().hasPrefix("x-remaining-credits:") }?.split(separator: " ").last.map(String.init)
            return (status, remaining)
        }
        #expect(try await post("sdxl1.0-txt2img", #"{"prompt":"x","samples":9}"#) == (422, "1"))
        #expect(try await post("sd1.5-img2img", #"{"prompt":"x"}"#) == (403, "1"), "outside the key's allow-list")
        backend.fail(with: .failed("out of memory"))
        #expect(try await post("sdxl1.0-txt2img", #"{"prompt":"x"}"#) == (502, "1"))
        backend.fail(with: nil)
        #expect(try await post("sdxl1.0-txt2img", #"{"prompt":"x","samples":2}"#) == (200, "0.984"))
        let usage = try await ledger.usage(keyID: key.id, teamID: nil, from: 0, to: .max)
        #expect(usage.map(\.status) == [422, 403, 502, 200])
        #expect(usage.map(\.cost.description) == ["0", "0", "0", "0.016"])
        // The refusals, which held nothing, are counted: they name no request.
        #expect(usage.map(\.counted) == [true, true, false, false])
        #expect(usage.filter { !$0.counted }.allSatisfy { $0.requestID.count == 16 }, "each listed usage event carries the request id")
        #expect(try await ledger.verify().isEmpty)
        await server.shutdown()
    }
}

@Suite("Idempotency-Key end to end", .serialized)
struct IdempotencyTests {
    @Test func aRepeatGetsTheFirstAnswerWithoutASecondChargeAndAnotherBodyIs422() async throws {
        let backend = FakeBackend()
        let (server, port, ledger) = try await CreditTests.start(backend: backend)
        let (key, secret) = try await ledger.createKey(NewKey(name: "retrier"))
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "1")!, reason: "top-up")
        func post(_ body: String, idempotencyKey: String) async throws -> String {
            try await Command.run(
                "curl",
                [
                    "-sS", "-i", "-H", "x-api-key: \(secret)", "-H", "Content-Type: application/json",
                    "-H", "Idempotency-Key: \(idempotencyKey)", "-d", body,
                    "http://127.0.0.1:\(port)/v1/sdxl1.0-txt2img",
                ]
            ).output
        }
        let first = try await post(#"{"prompt":"a cat","seed":-1}"#, idempotencyKey: "order-1")
        let again = try await post(#"{"prompt":"a cat","seed":-1}"#, idempotencyKey: "order-1")
        #expect(first.hasPrefix("HTTP/1.1 200") && again.hasPrefix("HTTP/1.1 200"))
        // The same answer (its seed, its image), charged once, marked as a replay.
        func header(_ name: String, _ answer: String) -> String? {
            answer.split(separator: "\r\n").first { $0.lowercased().hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 2)) }
        }
        #expect(header("x-seed-value", first) == header("x-seed-value", again))
        #expect(first.split(separator: "\r\n\r\n").last == again.split(separator: "\r\n\r\n").last)
        #expect(header("x-idempotent-replayed", again) == "true")
        #expect(header("x-remaining-credits", again) == "0.992")
        #expect(backend.requests.count == 1)
        let other = try await post(#"{"prompt":"a dog"}"#, idempotencyKey: "order-1")
        #expect(other.hasPrefix("HTTP/1.1 422"))
        #expect(other.contains("Idempotency-Key was already used for a different request"))
        // A failure is not kept: its repeat runs again.
        backend.fail(with: .timedOut)
        #expect(try await post(#"{"prompt":"a bird"}"#, idempotencyKey: "order-2").hasPrefix("HTTP/1.1 504"))
        backend.fail(with: nil)
        #expect(try await post(#"{"prompt":"a bird"}"#, idempotencyKey: "order-2").hasPrefix("HTTP/1.1 200"))
        #expect(try await ledger.balance(of: .key(key.id)).available == Credits(decimal: "0.984")!)
        #expect(try await ledger.verify().isEmpty)
        await server.shutdown()
    }
}
