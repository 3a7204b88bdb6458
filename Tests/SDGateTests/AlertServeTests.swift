import Foundation
import TestSupport
import Testing

/// The operator's alerts through `sdgate serve`: a receiver on 127.0.0.1, written with the
/// Standard Webhooks library as an operator's would be, checks every delivery with the operator's
/// secret. Each threshold crossing arrives once; a top-up re-arms them; a worker going down is
/// told; an alert the receiver was not there for arrives after the gateway restarts.
@Suite("Alerts through sdgate serve", .serialized)
struct AlertServeTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    static func environment(_ upstream: FakeSegmindUpstream, receiverPort: Int, extraYAML: String = "") throws -> [String: String] {
        try ProxiedGateway.environment(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["segmind"]],
            extraYAML: "alerts:\n  urls: http://127.0.0.1:\(receiverPort)/alerts\n" + extraYAML,
            base: ["SDGATE_ALERTS_SECRET": secret, "SDGATE_WEBHOOKS_FIRST_RETRY": "200ms"])
    }

    /// What the receiver got: each delivery's alert type, and the threshold of a credits alert.
    static func alerts(_ receiver: Command.Background) -> [(type: String, threshold: Int?)] {
        WebhookTests.deliveries(receiver).map { delivery in
            let body = delivery["body"] as? [String: Any]
            return (body?["type"] as? String ?? "?", (body?["data"] as? [String: Any])?["threshold"] as? Int)
        }
    }

    static func thresholds(_ receiver: Command.Background) -> [Int] {
        alerts(receiver).filter { $0.type == "credits.threshold" }.compactMap(\.threshold)
    }

    static func generate(_ gateway: ProxiedGateway, _ secret: String) async throws -> Int? {
        try await gateway.sdk(secret, "sdxl1.0-txt2img", ["prompt": "a lighthouse"])["status"] as? Int
    }

    /// The operator deliveries in the gateway's database: the proof that none was queued twice.
    static func operatorDeliveries(_ gateway: ProxiedGateway, state: String? = nil) async throws -> Int {
        let database = try #require(gateway.environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        let filter = state.map { " AND state = '\($0)'" } ?? ""
        let counted = try await Command.run(
            "sqlite3", [database, "SELECT count(*) FROM webhook_delivery WHERE recipient = 'operator'\(filter)"])
        return Int(counted.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test func eachCrossingReachesTheOperatorOnceSignedAndATopUpRearmsIt() async throws {
        let upstream = try FakeSegmindUpstream()
        let (receiver, port) = try await WebhookTests.startReceiver(secret: Self.secret, failures: 0)
        // The fake upstream reports 9.2871 credits left, under this.
        let gateway = try await ProxiedGateway.start(
            environment: try Self.environment(upstream, receiverPort: port, extraYAML: "  upstream_low_credits: 10\n"))
        // Five images at 0.008 each.
        let member = try await gateway.createKey(name: "ines", credits: "0.04")

        for _ in 0..<3 { #expect(try await Self.generate(gateway, member.secret) == 200) }
        #expect(await eventually(timeout: .seconds(60)) { Self.alerts(receiver).contains { $0.type == "upstream.credits_low" } })
        #expect(Self.thresholds(receiver).isEmpty, "60 % spent: below 80 %")
        #expect(try await Self.generate(gateway, member.secret) == 200)
        #expect(await eventually(timeout: .seconds(60)) { Self.thresholds(receiver) == [80] }, "\(receiver.log)")
        #expect(try await Self.generate(gateway, member.secret) == 200)
        #expect(await eventually(timeout: .seconds(60)) { Self.thresholds(receiver) == [80, 100] }, "\(receiver.log)")
        #expect(try await Self.generate(gateway, member.secret) != 200, "nothing left")

        // A top-up re-arms the thresholds: spending it down again crosses 80 % again.
        #expect(try await gateway.command(["keys", "topup", member.id, "0.04"]).status == 0)
        for _ in 0..<4 { #expect(try await Self.generate(gateway, member.secret) == 200) }
        #expect(await eventually(timeout: .seconds(60)) { Self.thresholds(receiver) == [80, 100, 80] }, "\(receiver.log)")

        let deliveries = WebhookTests.deliveries(receiver)
        #expect(deliveries.allSatisfy { $0["verified"] as? Bool == true }, "every delivery passes the library's check: \(deliveries)")
        let ids = deliveries.compactMap { ($0["headers"] as? [String: String])?["webhook-id"] }
        #expect(Set(ids).count == deliveries.count && ids.allSatisfy { $0.hasPrefix("msg_") })
        let first = try #require(deliveries.first { ($0["body"] as? [String: Any])?["type"] as? String == "credits.threshold" })
        let data = try #require((first["body"] as? [String: Any])?["data"] as? [String: Any])
        #expect(data["account"] as? String == "key" && data["id"] as? String == member.id && data["limit"] as? String == "0.04", "\(data)")
        #expect(Self.alerts(receiver).filter { $0.type == "upstream.credits_low" }.count == 1, "still low: told once")
        #expect(try await Self.operatorDeliveries(gateway) == 4, "three crossings and one low upstream, each queued once")

        let scrape = try await Command.run("curl", ["-sS", "http://127.0.0.1:\(gateway.port)/metrics"]).output
        let metrics = PrometheusText(scrape)
        #expect(metrics.value("sdgate_alerts_total", ["type": "credits.threshold"]) == 3, "\(scrape)")
        #expect(metrics.value("sdgate_alerts_total", ["type": "upstream.credits_low"]) == 1)
        #expect(metrics.value("sdgate_alert_subjects", ["kind": "key-credits", "state": "80"]) == 1)
        #expect(metrics.value("sdgate_alert_subjects", ["kind": "upstream-credits", "state": "low"]) == 1)
        #expect(metrics.value("sdgate_alert_attempts_total", ["outcome": "delivered"]) == 4)
        #expect(try await gateway.verify().status == 0, "alerts never move credits")
        #expect(try await gateway.stop() == 0)
        #expect(!gateway.log.contains(Self.secret))
        _ = try await receiver.stop(signal: SIGTERM)
        await upstream.shutdown()
    }

    @Test func anAlertTheReceiverMissedArrivesAfterTheGatewayRestarts() async throws {
        let upstream = try FakeSegmindUpstream()
        // A port for the receiver, which is not listening yet.
        let (probe, port) = try await WebhookTests.startReceiver(secret: Self.secret, failures: 0)
        _ = try await probe.stop(signal: SIGTERM)
        let gateway = try await ProxiedGateway.start(environment: try Self.environment(upstream, receiverPort: port))
        let member = try await gateway.createKey(name: "jun", credits: "0.008")
        #expect(try await Self.generate(gateway, member.secret) == 200)
        // Both thresholds crossed at once; their first attempts find nobody listening.
        let database = try #require(gateway.environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        #expect(
            await eventually(timeout: .seconds(60)) {
                let tried = try? await Command.run(
                    "sqlite3",
                    [database, "SELECT count(DISTINCT delivery_id) FROM webhook_attempt a JOIN webhook_delivery d ON d.id = a.delivery_id"])
                return tried?.output.trimmingCharacters(in: .whitespacesAndNewlines) == "2"
            })
        #expect(try await gateway.stop() == 0)
        #expect(try await Self.operatorDeliveries(gateway, state: "PENDING") == 2, "kept for later")

        let (receiver, _) = try await WebhookTests.startReceiver(secret: Self.secret, failures: 0, port: port)
        let restarted = try await gateway.restarted()
        #expect(await eventually(timeout: .seconds(60)) { Self.thresholds(receiver).sorted() == [80, 100] }, "\(receiver.log)")
        #expect(WebhookTests.deliveries(receiver).allSatisfy { $0["verified"] as? Bool == true })
        #expect(await eventually(timeout: .seconds(60)) { (try? await Self.operatorDeliveries(restarted, state: "DELIVERED")) == 2 })
        #expect(try await Self.operatorDeliveries(restarted) == 2, "the restart queued nothing again")
        #expect(try await restarted.stop() == 0)
        _ = try await receiver.stop(signal: SIGTERM)
        await upstream.shutdown()
    }

    @Test func aWorkerGoingDownAndComingBackIsAlerted() async throws {
        let (receiver, port) = try await WebhookTests.startReceiver(secret: Self.secret, failures: 0)
        let gateway = try await ProxiedGateway.startLocal(
            workers: 1, environment: ["SDGATE_ALERTS_URLS": "http://127.0.0.1:\(port)/alerts", "SDGATE_ALERTS_SECRET": Self.secret])
        let worker = try #require(gateway.workerProcesses.first)
        #expect(kill(worker, SIGKILL) == 0)
        #expect(await eventually(timeout: .seconds(180)) { Self.alerts(receiver).map(\.type) == ["worker.down", "worker.up"] }, "\(receiver.log)")
        let down = try #require(WebhookTests.deliveries(receiver).first?["body"] as? [String: Any])
        #expect((down["data"] as? [String: Any])?["worker"] as? Int == 0)
        #expect(WebhookTests.deliveries(receiver).allSatisfy { $0["verified"] as? Bool == true })
        #expect(try await gateway.stop() == 0)
        #expect(Self.alerts(receiver).count == 2, "stopping the gateway's own workers is no alert")
        _ = try await receiver.stop(signal: SIGTERM)
    }

    @Test func anUpstreamThatCannotBeReachedIsAlertedOnce() async throws {
        let upstream = try FakeSegmindUpstream()
        let (receiver, port) = try await WebhookTests.startReceiver(secret: Self.secret, failures: 0)
        let gateway = try await ProxiedGateway.start(environment: try Self.environment(upstream, receiverPort: port))
        let member = try await gateway.createKey(name: "kai", credits: "1")
        await upstream.shutdown()
        for _ in 0..<2 { #expect(try await Self.generate(gateway, member.secret) != 200) }
        #expect(await eventually(timeout: .seconds(60)) { Self.alerts(receiver).map(\.type) == ["upstream.down"] }, "\(receiver.log)")
        let data = (WebhookTests.deliveries(receiver).first?["body"] as? [String: Any])?["data"] as? [String: Any]
        #expect(data?["upstream"] as? String == "segmind")
        #expect(try await Self.operatorDeliveries(gateway) == 1, "down twice in a row: told once")
        #expect(try await gateway.credits(of: member.id) == ("1", "0"), "nothing was delivered, nothing charged")
        #expect(try await gateway.stop() == 0)
        _ = try await receiver.stop(signal: SIGTERM)
    }
}
