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
}
