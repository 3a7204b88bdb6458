import Foundation
import TestSupport
import Testing

/// Background jobs across a crash: `sdgate serve` killed with SIGKILL while one job stalls at the
/// upstream and others wait in the queue, then started again on the same database.
@Suite("Jobs across a restart", .serialized)
struct JobRestartTests {
    /// One job at a time, and a short lease so that the killed gateway's running job is taken back soon.
    static func start(_ upstream: FakeSegmindUpstream, extraYAML: String = "") async throws -> ProxiedGateway {
        try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key, deadline: "10m")],
            routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: "jobs:\n  concurrency: 1\n  lease: 2s\n" + extraYAML)
    }

    static func submit(_ gateway: ProxiedGateway, _ secret: String, prompt: String) async throws -> String {
        let submitted = try await gateway.v2(["submit", secret, "sdxl1.0-txt2img", #"{"prompt": "\#(prompt)"}"#])
        #expect(submitted["status"] as? String == "QUEUED", "\(submitted)")
        return String(decoding: try JSONSerialization.data(withJSONObject: submitted), as: UTF8.self)
    }

    @Test func queuedJobsCompleteAfterARestartAndTheRunningOneRunsAgainChargedOnce() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.stall)
        let gateway = try await Self.start(upstream)
        let member = try await gateway.createKey(name: "rita", credits: "1")
        var jobs: [String] = []
        for prompt in ["first", "second", "third"] { jobs.append(try await Self.submit(gateway, member.secret, prompt: prompt)) }
        // The first job is at the stalled upstream, the other two wait behind it; all three hold credits.
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })
        #expect(try await gateway.credits(of: member.id) == ("0.976", "0.024"))

        #expect(try await gateway.gateway.stop(signal: SIGKILL) == 128 + SIGKILL)
        upstream.misbehave(nil)
        let restarted = try await gateway.restarted()
        for job in jobs {
            let waited = try await restarted.v2(["wait", member.secret, job])
            #expect((waited["result"] as? [String: Any])?["status"] as? String == "COMPLETED", "\(waited)")
            #expect((waited["images"] as? [[String: Any]])?.first?["format"] as? String == "png")
        }
        let prompts = upstream.received.compactMap { $0.json["prompt"] as? String }
        #expect(prompts.filter { $0 == "first" }.count >= 2, "the job that was running when the gateway died ran again: \(prompts)")
        #expect(prompts.filter { $0 == "second" }.count == 1 && prompts.filter { $0 == "third" }.count == 1)

        // Each job charged once, nothing left held, and the ledger agrees with itself.
        #expect(try await restarted.credits(of: member.id) == ("0.976", "0"))
        let usage = try await restarted.usage()
        #expect(usage.count == 3 && usage.allSatisfy { $0["status"] as? Int == 200 }, "\(usage)")
        let verified = try await restarted.verify()
        #expect(verified.status == 0, "\(verified.output)\(verified.errors)")
        #expect(try await restarted.stop() == 0)
        await upstream.shutdown()
    }

    /// A job whose gateway died after its end was recorded and before its charge: its answer and
    /// images were served, so the gateway that starts next charges it, once, however many times it
    /// starts, and whether or not its hold expired meanwhile. The gap is held open by a trigger that
    /// refuses every charge (a database that failed the settle), and the gateway is killed in it.
    @Test func aJobThatEndedJustBeforeItsGatewayDiedIsChargedOnceAfterTheRestart() async throws {
        let upstream = try FakeSegmindUpstream()
        var gateway = try await Self.start(upstream)
        let member = try await gateway.createKey(name: "sam", credits: "1")
        let database = try #require(gateway.environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        let refuseCharges = """
            CREATE TRIGGER refuse_charges BEFORE UPDATE OF state ON hold WHEN NEW.state = 'posted'
            BEGIN SELECT RAISE(ABORT, 'refused'); END;
            """
        for (round, prompt) in ["first", "second"].enumerated() {
            #expect(try await Command.run("sqlite3", [database, refuseCharges]).status == 0)
            let job = try await Self.submit(gateway, member.secret, prompt: prompt)
            let waited = try await gateway.v2(["wait", member.secret, job])
            #expect((waited["result"] as? [String: Any])?["status"] as? String == "COMPLETED", "\(waited)")
            #expect((waited["images"] as? [[String: Any]])?.first?["format"] as? String == "png", "served: \(waited)")
            let available = round == 0 ? "0.992" : "0.984"
            #expect(try await gateway.credits(of: member.id) == (available, "0.008"), "ended, its charge refused")

            #expect(try await gateway.gateway.stop(signal: SIGKILL) == 128 + SIGKILL)
            // The second time, the hold is past its expiry too: the restarted gateway's reaper may void it first.
            let reopen = "DROP TRIGGER refuse_charges;" + (round == 1 ? " UPDATE hold SET expires_at = 0 WHERE state = 'open';" : "")
            #expect(try await Command.run("sqlite3", [database, reopen]).status == 0)
            gateway = try await gateway.restarted()
            let charged = await eventually(timeout: .seconds(60)) {
                (try? await gateway.credits(of: member.id)).map { $0 == (available, "0") } ?? false
            }
            let after = try await gateway.credits(of: member.id)
            #expect(charged, "\(after)")
        }
        // Each job charged once, the first not again by the second restart, and one usage event each.
        #expect(try await gateway.credits(of: member.id) == ("0.984", "0"))
        let usage = try await gateway.usage()
        #expect(usage.count == 2 && usage.allSatisfy { $0["status"] as? Int == 200 }, "\(usage)")
        let verified = try await gateway.verify()
        #expect(verified.status == 0, "\(verified.output)\(verified.errors)")
        #expect(try await gateway.stop() == 0)
        let posts = try await Command.run("sqlite3", [database, "SELECT COUNT(*), SUM(amount) FROM entry WHERE kind = 'post'"])
        #expect(posts.output.trimmingCharacters(in: .whitespacesAndNewlines) == "2|-16000", "\(posts.output)\(posts.errors)")
        await upstream.shutdown()
    }

    @Test func aJobQueuedLongerThanMaxQueueTimeFailsAndChargesNothing() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.stall)
        let gateway = try await Self.start(upstream, extraYAML: "  max_queue_time: 1s\n")
        let member = try await gateway.createKey(name: "quinn", credits: "1")
        _ = try await Self.submit(gateway, member.secret, prompt: "at the upstream")
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })
        let waiting = try await Self.submit(gateway, member.secret, prompt: "behind it")
        let failed = try await gateway.v2(["wait", member.secret, waiting])
        #expect(failed["failed"] as? String == "the job waited too long in the queue", "\(failed)")
        #expect(try await gateway.credits(of: member.id) == ("0.992", "0.008"), "its hold released, the running job's kept")

        upstream.misbehave(nil)
        #expect(try await gateway.stop() == 0)
        #expect(try await gateway.verify().status == 0)
        await upstream.shutdown()
    }
}
