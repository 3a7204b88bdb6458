import Foundation
import TestSupport
import Testing

/// A gateway killed with SIGKILL while requests hold credits: nothing settles them, so they must
/// come back when their holds expire, voided by the restarted gateway.
@Suite("Crash recovery", .serialized)
struct CrashRecoveryTests {
    @Test func holdsOfAKilledGatewayAreVoidedAfterTheirExpiryAndTheLedgerVerifies() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.stall)
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key, deadline: "10m")],
            routes: ["sdxl1.0-txt2img": ["segmind"]],
            // Long enough that the holds are still open when the test looks at them below, even on
            // a machine busy with the other tests (2 s was not); short enough to wait out after the restart.
            extraYAML: "ledger:\n  hold_lifetime: 10s\n")
        let member = try await gateway.createKey(name: "frank", credits: "1")
        let url = "http://127.0.0.1:\(gateway.port)/v1/sdxl1.0-txt2img"
        let clients = Task {
            try await withThrowingTaskGroup(of: Int32.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await Command.run(
                            "curl",
                            [
                                "-sS", "-m", "120", "-H", "x-api-key: \(member.secret)",
                                "-H", "Content-Type: application/json", "-d", #"{"prompt":"a fox"}"#, url,
                            ]
                        ).status
                    }
                }
                return try await group.reduce(into: [Int32]()) { $0.append($1) }
            }
        }
        // Four requests reached the stalled upstream, each holding 0.008.
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 4 })
        #expect(try await gateway.credits(of: member.id) == ("0.968", "0.032"))

        #expect(try await gateway.gateway.stop(signal: SIGKILL) == 128 + SIGKILL)
        #expect(try await clients.value.allSatisfy { $0 != 0 }, "the clients' connections died with the gateway")
        upstream.misbehave(nil)

        // The restarted gateway's reaper voids the holds once they have expired.
        let restarted = try await gateway.restarted()
        let recovered = await eventually(
            timeout: .seconds(60),
            {
                (try? await restarted.credits(of: member.id)).map { $0 == ("1", "0") } ?? false
            })
        #expect(recovered)
        // The log is written a moment after the holds are voided, by the log's own writer.
        #expect(await eventually { restarted.log.contains("expired holds voided") }, "\(restarted.log)")
        let verified = try await restarted.verify()
        #expect(verified.status == 0, "\(verified.output)\(verified.errors)")
        // And it serves again.
        #expect(try await restarted.sdk(member.secret, "sdxl1.0-txt2img", ["prompt": "a fox"])["status"] as? Int == 200)
        #expect(try await restarted.stop() == 0)
        await upstream.shutdown()
    }

    /// A generation that reached its upstream before SIGTERM is work the team pays for: the gateway
    /// waits for it past the grace period that closed its client's connection, charges it, and only
    /// then exits. It closed the upstream's pool under the call and exited, the hold left to
    /// expire, uncharged.
    @Test func aGenerationUnderWayAtShutdownIsWaitedForAndCharged() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.wait)
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key, deadline: "10m")],
            routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: "server:\n  shutdown_grace_period: 1s\n")
        let member = try await gateway.createKey(name: "grace", credits: "1")
        let client = Task {
            try await Command.run(
                "curl",
                [
                    "-sS", "-m", "120", "-o", "/dev/null", "-w", "%{http_code}", "-H", "x-api-key: \(member.secret)",
                    "-H", "Content-Type: application/json", "-d", #"{"prompt":"a fox"}"#,
                    "http://127.0.0.1:\(gateway.port)/v1/sdxl1.0-txt2img",
                ]
            ).output
        }
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })

        let stopped = Task { try await gateway.stop() }
        // The grace period ends: the client's connection is closed without an answer...
        #expect(try await client.value == "000")
        // ...and the gateway waits for the upstream's answer.
        #expect(await eventually(timeout: .seconds(30)) { gateway.log.contains("waiting for the generations under way") }, "\(gateway.log)")
        #expect(processExists(gateway.gateway.process.processIdentifier))
        #expect(upstream.answerOne())
        #expect(try await stopped.value == 0, "\(gateway.log)")

        #expect(upstream.received.count == 1)
        #expect(try await gateway.credits(of: member.id) == ("0.992", "0"), "charged once, nothing left held")
        #expect(try await gateway.usage().map { $0["cost"] as? String } == ["0.008"])
        let verified = try await gateway.verify()
        #expect(verified.status == 0, "\(verified.output)\(verified.errors)")
        await upstream.shutdown()
    }
}
