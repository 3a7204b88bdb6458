import Foundation
import TestSupport
import Testing

/// ModelsLab v3 webhooks through `sdgate serve`: a client written like ModelsLab's examples asks
/// for a webhook; a receiver checks each delivery's Standard Webhooks signature with the key's
/// secret from the admin API, and refuses the first one, which the gateway sends again.
@Suite("Webhooks through sdgate serve", .serialized)
struct WebhookTests {
    static func start(_ upstream: FakeSegmindUpstream, extraYAML: String) async throws -> ProxiedGateway {
        try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: extraYAML)
    }

    /// The key's webhook secret, as `GET /admin/keys/{id}` shows it.
    static func secret(of id: String, on gateway: ProxiedGateway) async throws -> String {
        let shown = try await curl([
            "-H", "Authorization: Bearer \(gateway.environment["SDGATE_ADMIN_TOKEN"] ?? "")",
            "http://127.0.0.1:\(gateway.port)/admin/keys/\(id)",
        ])
        return try #require(shown.body["webhook_secret"] as? String, "\(shown)")
    }

    static func post(_ gateway: ProxiedGateway, _ body: [String: Any]) async throws -> [String: Any] {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let call = try await Command.run(
            "python3",
            [
                Repository.path("Tests/SDGateTests/Clients/modelslab_client.py"), "post",
                "http://127.0.0.1:\(gateway.port)/api/v3/text2img", "json", json,
            ])
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(call.output.utf8)) as? [String: Any], "\(call.errors)")
        return try #require(answer["body"] as? [String: Any])
    }

    /// The receiver's deliveries so far, as it printed them.
    static func deliveries(_ receiver: Command.Background) -> [[String: Any]] {
        receiver.log.split(separator: "\n").dropFirst().compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    static func startReceiver(secret: String, failures: Int, port: Int = 0) async throws -> (Command.Background, Int) {
        let receiver = try await Command.start(
            "python3", [Repository.path("Tests/SDGateTests/Clients/webhook_receiver.py"), secret, "\(failures)", "\(port)"])
        var port: Int?
        _ = await eventually(timeout: .seconds(30)) {
            port = receiver.log.split(separator: "\n").first.flatMap { $0.hasPrefix("listening ") ? Int($0.dropFirst(10)) : nil }
            return port != nil
        }
        return (receiver, try #require(port, "\(receiver.log)"))
    }

    @Test func aSignedWebhookIsDeliveredAndRedeliveredAfterA500() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await Self.start(upstream, extraYAML: "webhooks:\n  allow_private_addresses: true\n  first_retry: 200ms\n")
        let member = try await gateway.createKey(name: "wanda", credits: "1")
        let secret = try await Self.secret(of: member.id, on: gateway)
        #expect(secret.hasPrefix("whsec_"))
        #expect(try await Self.secret(of: member.id, on: gateway) == secret, "one secret per key")
        let (receiver, port) = try await Self.startReceiver(secret: secret, failures: 1)

        let answer = try await Self.post(
            gateway,
            [
                "key": member.secret, "prompt": "a lighthouse", "samples": "1",
                "webhook": "http://127.0.0.1:\(port)/hooks/sd", "track_id": "order-17",
            ])
        #expect(answer["status"] as? String == "success", "\(answer)")
        let id = try #require(answer["id"] as? Int)
        #expect(await eventually(timeout: .seconds(60)) { Self.deliveries(receiver).count >= 2 }, "\(receiver.log)")
        let deliveries = Self.deliveries(receiver)
        #expect(deliveries.map { $0["answered"] as? Int } == [500, 204])
        #expect(deliveries.allSatisfy { $0["verified"] as? Bool == true }, "the receiver's check passed: \(deliveries)")
        let headers = deliveries.map { $0["headers"] as? [String: String] ?? [:] }
        #expect(
            headers[0]["webhook-id"] == headers[1]["webhook-id"] && headers[0]["webhook-id"]?.hasPrefix("msg_") == true,
            "a redelivery keeps its id, so receivers can tell a repeat")
        #expect(headers[0]["content-type"] == "application/json")
        let body = try #require(deliveries.last?["body"] as? [String: Any])
        #expect(body["status"] as? String == "success" && body["id"] as? Int == id && body["track_id"] as? String == "order-17")
        #expect(body["output"] as? [String] == answer["output"] as? [String], "the success body, as fetch answers it")

        // Every attempt is on record in the gateway's database.
        let database = try #require(gateway.environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        let attempts = try await Command.run(
            "sqlite3",
            [
                database,
                """
                SELECT d.state, a.number, a.status FROM webhook_delivery d JOIN webhook_attempt a ON a.delivery_id = d.id
                WHERE d.job_id = (SELECT id FROM job WHERE public_id = \(id)) ORDER BY a.number
                """,
            ])
        #expect(attempts.output == "DELIVERED|1|500\nDELIVERED|2|204\n", "\(attempts.output)\(attempts.errors)")

        #expect(try await gateway.stop() == 0)
        #expect(!gateway.log.contains(secret) && !gateway.log.contains(member.secret))
        _ = try await receiver.stop(signal: SIGTERM)
        await upstream.shutdown()
    }

    /// A job whose gateway died after its end was recorded and before its settle: the gateway that
    /// starts next settles it, and its webhook goes out with its charge, once.
    @Test func aJobsWebhookGoesOutOnceWithItsChargeAfterItsGatewayDiedBetweenItsEndAndItsSettle() async throws {
        let upstream = try FakeSegmindUpstream()
        var gateway = try await Self.start(upstream, extraYAML: "webhooks:\n  allow_private_addresses: true\n")
        let member = try await gateway.createKey(name: "zoe", credits: "1")
        let (receiver, port) = try await Self.startReceiver(secret: try await Self.secret(of: member.id, on: gateway), failures: 0)
        // Every charge refused (a database that failed the settle) holds the gap open; the gateway is killed in it.
        let database = try #require(gateway.environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        let refuseCharges = """
            CREATE TRIGGER refuse_charges BEFORE UPDATE OF state ON hold WHEN NEW.state = 'posted'
            BEGIN SELECT RAISE(ABORT, 'refused'); END;
            """
        #expect(try await Command.run("sqlite3", [database, refuseCharges]).status == 0)
        let answer = try await Self.post(gateway, ["key": member.secret, "prompt": "a lighthouse", "webhook": "http://127.0.0.1:\(port)/"])
        #expect(answer["status"] as? String == "success", "\(answer)")
        let id = try #require(answer["id"] as? Int)
        let held = try await gateway.credits(of: member.id)
        #expect(held.held != "0", "its charge refused: \(held)")
        #expect(try await gateway.gateway.stop(signal: SIGKILL) == 128 + SIGKILL)

        #expect(try await Command.run("sqlite3", [database, "DROP TRIGGER refuse_charges"]).status == 0)
        gateway = try await gateway.restarted()
        #expect(await eventually(timeout: .seconds(60)) { !Self.deliveries(receiver).isEmpty }, "\(receiver.log)")
        let body = Self.deliveries(receiver).first?["body"] as? [String: Any]
        #expect(body?["status"] as? String == "success" && body?["id"] as? Int == id, "\(receiver.log)")
        #expect(try await gateway.credits(of: member.id).held == "0", "charged with it")
        #expect(try await gateway.usage().count == 1)
        let queued = try await Command.run(
            "sqlite3", [database, "SELECT COUNT(*) FROM webhook_delivery WHERE job_id = (SELECT id FROM job WHERE public_id = \(id))"])
        #expect(queued.output == "1\n", "one delivery: \(queued.output)\(queued.errors)")
        let verified = try await gateway.verify()
        #expect(verified.status == 0, "\(verified.output)\(verified.errors)")
        #expect(try await gateway.stop() == 0)
        _ = try await receiver.stop(signal: SIGTERM)
        await upstream.shutdown()
    }

    @Test func aFailedJobsWebhookCarriesTheFailureAndPrivateAddressesAreRefusedByDefault() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await Self.start(upstream, extraYAML: "webhooks:\n  allow_private_addresses: true\n")
        let member = try await gateway.createKey(name: "xavier", credits: "1")
        let (receiver, port) = try await Self.startReceiver(secret: try await Self.secret(of: member.id, on: gateway), failures: 0)
        upstream.misbehave(.serverError)
        let failed = try await Self.post(gateway, ["key": member.secret, "prompt": "x", "webhook": "http://127.0.0.1:\(port)/", "track_id": 9])
        #expect(failed["status"] as? String == "failed", "\(failed)")
        #expect(await eventually(timeout: .seconds(60)) { !Self.deliveries(receiver).isEmpty })
        let body = Self.deliveries(receiver).first?["body"] as? [String: Any]
        #expect(
            body?["status"] as? String == "failed" && body?["message"] as? String == "the upstream failed (HTTP 500)"
                && body?["track_id"] as? String == "9")
        #expect(Self.deliveries(receiver).first?["verified"] as? Bool == true)
        #expect(try await gateway.stop() == 0)
        _ = try await receiver.stop(signal: SIGTERM)

        // Without allow_private_addresses, a webhook on a loopback or private address is refused
        // before anything is queued or held.
        upstream.misbehave(nil)
        let strict = try await Self.start(upstream, extraYAML: "")
        let other = try await strict.createKey(name: "yara", credits: "1")
        for url in ["http://127.0.0.1:\(port)/", "http://169.254.169.254/latest", "http://10.0.0.8/hook", "ftp://hooks.example/"] {
            let refused = try await Self.post(strict, ["key": other.secret, "prompt": "x", "webhook": url])
            #expect(refused["status"] as? String == "error" && (refused["message"] as? String)?.hasPrefix("webhook: ") == true, "\(url): \(refused)")
        }
        #expect(try await strict.credits(of: other.id) == ("1", "0"))
        #expect(upstream.received.count == 1, "only the failed job reached the upstream")
        #expect(try await strict.stop() == 0)
        await upstream.shutdown()
    }
}
