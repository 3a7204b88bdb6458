import Foundation
import TestSupport
import Testing

/// The money path against a hostile member, through `sdgate serve` and a fake Segmind upstream:
/// a hold shorter than the upstream, an upstream that delivers fewer images than asked for, a key
/// flooding the job queue, a client that leaves mid-request, and a gateway killed under an
/// `Idempotency-Key`. Each image delivered is charged exactly once; none not delivered is charged.
@Suite("Money path abuse", .serialized)
struct MoneyAbuseTests {
    static let slug = "sdxl1.0-txt2img"

    static func start(_ upstream: FakeSegmindUpstream, extraYAML: String = "") async throws -> ProxiedGateway {
        try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key, deadline: "10m")],
            routes: [slug: ["segmind"]], extraYAML: extraYAML)
    }

    static func requestArguments(
        _ gateway: ProxiedGateway, _ secret: String, _ body: String, path: String = "/v1/\(slug)",
        idempotencyKey: String? = nil
    ) -> [String] {
        var arguments = ["-m", "120", "-H", "x-api-key: \(secret)", "-H", "Content-Type: application/json"]
        if let idempotencyKey { arguments += ["-H", "Idempotency-Key: \(idempotencyKey)"] }
        return arguments + ["-d", body, "http://127.0.0.1:\(gateway.port)\(path)"]
    }

    static func post(
        _ gateway: ProxiedGateway, _ secret: String, _ body: String, path: String = "/v1/\(slug)",
        idempotencyKey: String? = nil
    ) async throws -> CurlAnswer {
        try await curl(requestArguments(gateway, secret, body, path: path, idempotencyKey: idempotencyKey))
    }

    static func usage(_ gateway: ProxiedGateway, of keyID: String) async throws -> [[String: Any]] {
        try await gateway.usage().filter { $0["key_id"] as? String == keyID }
    }

    /// A v3 call answered `processing` at once (`jobs.wait: 0s`): its job's id, and each of its
    /// future images' link with the file the gateway will store it in.
    static func queueV3(_ gateway: ProxiedGateway, _ secret: String, samples: Int) async throws -> (id: Int, images: [(link: String, file: String)]) {
        let body = #"{"key": "\#(secret)", "prompt": "herons", "samples": \#(samples), "width": 512, "height": 512}"#
        let queued = try await curl(["-H", "Content-Type: application/json", "-d", body, "http://127.0.0.1:\(gateway.port)/api/v3/text2img"]).body
        let id = try #require(queued["id"] as? Int, "\(queued)")
        let links = try #require(queued["future_links"] as? [String], "\(queued)")
        let folder = try #require(gateway.environment["SDGATE_DATA_DIR"]) + "/generations/"
        return (id, links.map { ($0, folder + ($0.split(separator: "/").last.map(String.init) ?? "")) })
    }

    /// A v3 job's answer once it is no longer processing, fetched as a ModelsLab client fetches it.
    static func v3Outcome(_ gateway: ProxiedGateway, _ secret: String, id: Int) async -> [String: Any] {
        var answer: [String: Any] = [:]
        let fetch = #"{"key": "\#(secret)"}"#
        let ended = await eventually(timeout: .seconds(60)) {
            answer =
                (try? await curl(["-H", "Content-Type: application/json", "-d", fetch, "http://127.0.0.1:\(gateway.port)/api/v3/fetch/\(id)"]))?
                .body ?? [:]
            return answer["status"] as? String != "processing" && !answer.isEmpty
        }
        #expect(ended, "\(answer)")
        return answer
    }

    @Test func aHoldShorterThanTheUpstreamIsKeptOpenAndTheImageChargedOnce() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.wait)
        let gateway = try await Self.start(upstream, extraYAML: "ledger:\n  hold_lifetime: 2s\n")
        let member = try await gateway.createKey(name: "slowpoke", credits: "1")
        let request = Task {
            let answer = try await Self.post(gateway, member.secret, #"{"prompt": "a slow fox"}"#)
            return (status: answer.status, headers: answer.headers)
        }
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })

        // The upstream takes more than twice the hold's lifetime, with the reaper looking every
        // second: the hold stays open all along, renewed while the upstream works.
        let upstreamTime = ContinuousClock.now + .seconds(5)
        var looks: [(available: String, held: String)] = []
        while ContinuousClock.now < upstreamTime { looks.append(try await gateway.credits(of: member.id)) }
        #expect(!looks.isEmpty && looks.allSatisfy { $0 == ("0.992", "0.008") }, "\(looks)")
        upstream.misbehave(nil)

        let answer = try await request.value
        #expect(answer.status == 200 && answer.headers.contains("x-cost: 0.008"), "\(answer.headers)")
        #expect(try await gateway.credits(of: member.id) == ("0.992", "0"))
        let usage = try await Self.usage(gateway, of: member.id)
        #expect(usage.count == 1 && usage.first?["status"] as? Int == 200 && usage.first?["cost"] as? String == "0.008", "\(usage)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// A v3 job for two images whose second cannot be stored fails uncharged, and its first image,
    /// whose name the client was given ahead, is not served either (it once was, free, for the
    /// whole retention).
    @Test func aJobWhoseImagesCannotAllBeStoredDeliversNoneAndIsNotCharged() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.wait)
        let gateway = try await Self.start(upstream, extraYAML: "jobs:\n  wait: 0s\n")
        let member = try await gateway.createKey(name: "unlucky", credits: "1")
        let (id, images) = try await Self.queueV3(gateway, member.secret, samples: 2)
        #expect(images.count == 2)
        // The second image's place is taken by a folder, so that writing it fails.
        try FileManager.default.createDirectory(atPath: try #require(images.last).file + "/taken", withIntermediateDirectories: true)
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })
        upstream.misbehave(nil)

        let fetched = await Self.v3Outcome(gateway, member.secret, id: id)
        #expect(fetched["status"] as? String == "error" || fetched["status"] as? String == "failed", "\(fetched)")
        #expect(try await curl([try #require(images.first).link]).status == 404, "the first image is not served")
        #expect(try await gateway.credits(of: member.id) == ("1", "0"))
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// A job that fails serves none of its images, whoever stored them: an earlier run of it that
    /// lost its lease may have stored one under the names its client holds (here the test stores
    /// it, while the job's run waits on the upstream). It was served free for the whole retention.
    @Test func aFailedJobServesNoImageUnderItsNames() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.stall)
        let gateway = try await Self.start(upstream, extraYAML: "jobs:\n  wait: 0s\n")
        let member = try await gateway.createKey(name: "stale", credits: "1")
        let (id, images) = try await Self.queueV3(gateway, member.secret, samples: 1)
        let (link, file) = try #require(images.first)
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })
        try Data(TestImages.png(width: 64, height: 64)).write(to: URL(fileURLWithPath: file))
        #expect(try await curl([link]).status == 200, "stored as a run would store it")
        upstream.misbehave(nil)

        let fetched = await Self.v3Outcome(gateway, member.secret, id: id)
        #expect(fetched["status"] as? String == "error" || fetched["status"] as? String == "failed", "\(fetched)")
        #expect(try await curl([link]).status == 404, "a failed job's image is not served")
        #expect(try await gateway.credits(of: member.id) == ("1", "0"))
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// A job the upkeep failed for good while its run still waited on the upstream (its lease lost
    /// three times over) serves nothing that run stores afterwards: the failure was settled
    /// before the image existed. It was served free for the whole retention.
    @Test func anImageStoredAfterItsJobFailedIsNotServed() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.wait)
        let gateway = try await Self.start(upstream, extraYAML: "jobs:\n  wait: 0s\n  lease: 4s\n")
        let member = try await gateway.createKey(name: "late", credits: "1")
        let (id, images) = try await Self.queueV3(gateway, member.secret, samples: 1)
        let link = try #require(images.first).link
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })

        // As if the job had been taken back twice before: this run's lease lapses, and the upkeep
        // fails the job for good, while the run goes on.
        let database = try #require(gateway.environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        #expect(try await Command.run("sqlite3", [database, "UPDATE job SET attempts = 3, lease_until = 1000"]).status == 0)
        let failed = await Self.v3Outcome(gateway, member.secret, id: id)
        #expect(failed["status"] as? String == "error" || failed["status"] as? String == "failed", "\(failed)")
        #expect(try await gateway.credits(of: member.id) == ("1", "0"))
        upstream.misbehave(nil)

        // The run stores its image, then finds its end refused.
        #expect(await eventually(timeout: .seconds(60)) { gateway.log.contains("job was taken back before it ended") })
        #expect(await eventually(timeout: .seconds(10)) { (try? await curl([link]))?.status == 404 }, "the late run's image is not served")
        #expect(try await gateway.credits(of: member.id) == ("1", "0"))
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// A key revoked while its jobs wait spends nothing from then on: the job running ends and is
    /// charged; the one queued behind it fails without reaching the upstream, its hold released.
    /// It once ran, and was charged, after the revocation.
    @Test func aRevokedKeysQueuedJobDoesNotRun() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.wait)
        let gateway = try await Self.start(upstream, extraYAML: "jobs:\n  concurrency: 1\n")
        let member = try await gateway.createKey(name: "leaver", credits: "1")
        _ = try await Self.post(gateway, member.secret, #"{"prompt": "a first owl"}"#, path: "/v2/\(Self.slug)")
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })
        let second = try await Self.post(gateway, member.secret, #"{"prompt": "a second owl"}"#, path: "/v2/\(Self.slug)")
        #expect(second.body["response_url"] is String, "queued: \(second)")
        #expect(try await gateway.command(["keys", "revoke", member.id]).status == 0)
        upstream.misbehave(nil)

        // The key no longer reads its jobs: the ledger tells what became of them.
        #expect(await eventually(timeout: .seconds(60)) { (try? await gateway.credits(of: member.id))?.held == "0" })
        #expect(upstream.received.count == 1, "the second job never reached the upstream")
        #expect(try await gateway.credits(of: member.id) == ("0.992", "0"), "the first image charged, the second nothing")
        let usage = try await Self.usage(gateway, of: member.id)
        #expect(usage.map { $0["status"] as? Int } == [200, 500], "\(usage)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// A queued job whose hold expired before its turn came (as after a crash that queued it again
    /// for longer than its hold had left) fails without running: its credits were released and
    /// may be spent since. It once ran, and was charged into debt.
    @Test func aQueuedJobWhoseHoldExpiredIsNotRun() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.wait)
        let gateway = try await Self.start(upstream, extraYAML: "jobs:\n  concurrency: 1\nledger:\n  hold_lifetime: 2s\n")
        let member = try await gateway.createKey(name: "patient", credits: "1")
        let first = try await Self.post(gateway, member.secret, #"{"prompt": "a first owl"}"#, path: "/v2/\(Self.slug)")
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })
        let second = try await Self.post(gateway, member.secret, #"{"prompt": "a second owl"}"#, path: "/v2/\(Self.slug)")
        let secondURL = try #require(second.body["response_url"] as? String, "\(second)")

        // The waiting job's hold runs out, and the reaper expires it.
        let database = try #require(gateway.environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        let queuedHold = "(SELECT hold_id FROM job WHERE state = 'QUEUED')"
        #expect(try await Command.run("sqlite3", [database, "UPDATE hold SET expires_at = 1000 WHERE id = \(queuedHold)"]).status == 0)
        #expect(
            await eventually(timeout: .seconds(60)) {
                (try? await Command.run("sqlite3", [database, "SELECT state FROM hold WHERE id = \(queuedHold)"]))?.output == "expired\n"
            })
        upstream.misbehave(nil)

        var result: [String: Any] = [:]
        #expect(
            await eventually(timeout: .seconds(60)) {
                result = (try? await curl(["-H", "x-api-key: \(member.secret)", secondURL]))?.body ?? [:]
                return result["status"] as? String == "FAILED"
            }, "\(result)")
        let firstURL = try #require(first.body["response_url"] as? String)
        #expect((try await curl(["-H", "x-api-key: \(member.secret)", firstURL])).body["status"] as? String == "COMPLETED")
        #expect(upstream.received.count == 1, "the second job never reached the upstream")
        #expect(try await gateway.credits(of: member.id) == ("0.992", "0"), "the first image charged, the second nothing")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// One image for `samples: 4`: each dialect charges one image and lists one.
    @Test func anUpstreamThatDeliversOneImageOfFourIsChargedForOneInEveryDialect() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.imagesAnswered = 1
        let gateway = try await Self.start(upstream)
        let member = try await gateway.createKey(name: "shortchanged", credits: "1")

        let now = try await Self.post(gateway, member.secret, #"{"prompt": "four foxes", "samples": 4}"#)
        #expect(now.status == 200 && now.headers.contains("x-cost: 0.008"), "\(now)")
        #expect(now.body["outputs"] as? Int == 1 && now.body["image"] is String, "one image, not a list of four")
        #expect(try await gateway.credits(of: member.id) == ("0.992", "0"))

        let submitted = try await Self.post(gateway, member.secret, #"{"prompt": "four owls", "samples": 4}"#, path: "/v2/\(Self.slug)")
        let responseURL = try #require(submitted.body["response_url"] as? String, "\(submitted)")
        var result: [String: Any] = [:]
        #expect(
            await eventually(timeout: .seconds(60)) {
                result = (try? await curl(["-H", "x-api-key: \(member.secret)", responseURL]))?.body ?? [:]
                return result["status"] as? String == "COMPLETED"
            })
        let v2URLs = (result["output"] as? [String]) ?? [result["output"] as? String].compactMap { $0 }
        #expect(v2URLs.count == 1, "\(result)")
        for url in v2URLs { #expect(try await curl([url]).status == 200, "every listed image exists: \(url)") }
        #expect(try await gateway.credits(of: member.id) == ("0.984", "0"))

        // At the model's own 25 steps (v3's default is 31), the same image costs the same as through Segmind.
        let v3Body =
            #"{"key": "\#(member.secret)", "prompt": "four hares", "samples": "4", "width": "512", "height": "512", "num_inference_steps": 25}"#
        var v3 = try await curl(["-H", "Content-Type: application/json", "-d", v3Body, "http://127.0.0.1:\(gateway.port)/api/v3/text2img"]).body
        if v3["status"] as? String == "processing", let id = v3["id"] as? Int { v3 = await Self.v3Outcome(gateway, member.secret, id: id) }
        let v3URLs = v3["output"] as? [String] ?? []
        #expect(v3["status"] as? String == "success" && v3URLs.count == 1, "\(v3)")
        for url in v3URLs { #expect(try await curl([url]).status == 200, "every listed image exists: \(url)") }
        #expect(try await gateway.credits(of: member.id) == ("0.976", "0"))

        let usage = try await Self.usage(gateway, of: member.id)
        #expect(usage.count == 3 && usage.allSatisfy { $0["status"] as? Int == 200 && $0["cost"] as? String == "0.008" }, "\(usage)")
        #expect(upstream.received.allSatisfy { $0.json["samples"] as? Int == 4 }, "four were asked for each time")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// One runner, paced by the test one job at a time: the patient key's single job runs right
    /// after the job running when it came, not after the flooding key's backlog; and the flooder's
    /// queue is bounded, in both asynchronous dialects, without holding anything for the refusal.
    @Test func aKeyFloodingJobsDoesNotHoldAnotherKeysJobBackAndIsBounded() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.wait)
        let gateway = try await Self.start(upstream, extraYAML: "jobs:\n  concurrency: 1\n  max_queued_per_key: 3\n")
        let flooder = try await gateway.createKey(name: "flooder", credits: "2")
        let patient = try await gateway.createKey(name: "patient", credits: "1")
        func submit(_ key: (id: String, secret: String), _ prompt: String) async throws -> CurlAnswer {
            try await Self.post(gateway, key.secret, #"{"prompt": "\#(prompt)"}"#, path: "/v2/\(Self.slug)")
        }

        #expect(try await submit(flooder, "flood 0").status == 200)
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })
        for index in 1...3 { #expect(try await submit(flooder, "flood \(index)").status == 200) }
        let refused = try await submit(flooder, "flood 4")
        #expect(refused.status == 429 && (refused.body["error"] as? String)?.contains("3 jobs queued") == true, "\(refused)")
        let v3Body = #"{"key": "\#(flooder.secret)", "prompt": "flood 5"}"#
        let v3 = try await curl(["-H", "Content-Type: application/json", "-d", v3Body, "http://127.0.0.1:\(gateway.port)/api/v3/text2img"])
        #expect(v3.body["status"] as? String == "error" && (v3.body["message"] as? String)?.contains("3 jobs queued") == true, "\(v3)")
        #expect(try await gateway.credits(of: flooder.id) == ("1.968", "0.032"), "four jobs held, the refused ones nothing")

        let patientJob = try await submit(patient, "patient")
        #expect(upstream.answerOne())
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 && upstream.received.count == 2 })
        #expect(upstream.received.map { $0.json["prompt"] as? String } == ["flood 0", "patient"], "the patient key's turn came next")
        #expect(upstream.answerOne())
        let responseURL = try #require(patientJob.body["response_url"] as? String)
        #expect(
            await eventually(timeout: .seconds(60)) {
                (try? await curl(["-H", "x-api-key: \(patient.secret)", responseURL]))?.body["status"] as? String == "COMPLETED"
            })
        #expect(upstream.received.count == 2 || upstream.received.count == 3, "at most the next flood job started meanwhile")

        upstream.misbehave(nil)
        #expect(await eventually(timeout: .seconds(60)) { (try? await gateway.credits(of: flooder.id)).map { $0 == ("1.968", "0") } ?? false })
        #expect(try await gateway.credits(of: patient.id) == ("0.992", "0"))
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    @Test func aClientThatLeavesAfterTheUpstreamHasItsRequestIsChargedAndItsRetryReplays() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.wait)
        let gateway = try await Self.start(upstream)
        let member = try await gateway.createKey(name: "leaver", credits: "1")
        let body = #"{"prompt": "a fox that left"}"#
        let client = try await Command.start("curl", ["-sS"] + Self.requestArguments(gateway, member.secret, body, idempotencyKey: "leave-1"))
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })
        _ = try await client.stop(signal: SIGKILL)

        // The gateway sees the client go; the upstream still works, so nothing is settled yet.
        let settledEarly = await eventually(timeout: .seconds(3)) { (try? await Self.usage(gateway, of: member.id))?.isEmpty == false }
        let early = try await Self.usage(gateway, of: member.id)
        #expect(!settledEarly, "\(early)")
        upstream.misbehave(nil)

        // The upstream answered: the team paid for the image, so the member does, once.
        #expect(await eventually(timeout: .seconds(60)) { (try? await Self.usage(gateway, of: member.id))?.isEmpty == false })
        let usage = try await Self.usage(gateway, of: member.id)
        #expect(usage.count == 1 && usage.first?["status"] as? Int == 200 && usage.first?["cost"] as? String == "0.008", "\(usage)")
        #expect(try await gateway.credits(of: member.id) == ("0.992", "0"))

        // The retry gets the image it paid for, without a second charge or a second upstream call.
        var retry = try await Self.post(gateway, member.secret, body, idempotencyKey: "leave-1")
        if retry.status == 409 {
            #expect(
                await eventually(timeout: .seconds(30)) {
                    retry = (try? await Self.post(gateway, member.secret, body, idempotencyKey: "leave-1")) ?? retry
                    return retry.status != 409
                })
        }
        #expect(retry.status == 200 && retry.headers.contains("x-idempotent-replayed: true") && retry.body["image"] is String, "\(retry)")
        #expect(try await gateway.credits(of: member.id) == ("0.992", "0"))
        #expect(upstream.received.count == 1)
        // The client's leaving is not the upstream's failure.
        let metrics = try await Command.run("curl", ["-sS", "http://127.0.0.1:\(gateway.port)/metrics"])
        #expect(metrics.output.contains("sdgate_generations_total") && !metrics.output.contains("sdgate_upstream_errors_total"), "\(metrics.output)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    @Test func anIdempotencyKeyOfAKilledGatewayIsServedOnceItsHoldExpires() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.stall)
        let gateway = try await Self.start(upstream, extraYAML: "ledger:\n  hold_lifetime: 2s\n")
        let member = try await gateway.createKey(name: "crashed", credits: "1")
        let body = #"{"prompt": "a fox before the crash"}"#
        let client = Task { try await Self.post(gateway, member.secret, body, idempotencyKey: "crash-1").status }
        #expect(await eventually(timeout: .seconds(60)) { upstream.stalledCount == 1 })
        #expect(try await gateway.gateway.stop(signal: SIGKILL) == 128 + SIGKILL)
        #expect(try await client.value != 200, "the client's connection died with the gateway")
        upstream.misbehave(nil)

        // Restarted, the gateway answers 409 while the dead request's hold lasts, then runs the retry.
        let restarted = try await gateway.restarted()
        var retry = try await Self.post(restarted, member.secret, body, idempotencyKey: "crash-1")
        #expect(
            await eventually(timeout: .seconds(60)) {
                if retry.status == 409 { retry = (try? await Self.post(restarted, member.secret, body, idempotencyKey: "crash-1")) ?? retry }
                return retry.status != 409
            })
        #expect(retry.status == 200 && !retry.headers.contains("x-idempotent-replayed") && retry.body["image"] is String, "\(retry)")
        let replay = try await Self.post(restarted, member.secret, body, idempotencyKey: "crash-1")
        #expect(replay.status == 200 && replay.headers.contains("x-idempotent-replayed: true"))
        #expect(try await restarted.credits(of: member.id) == ("0.992", "0"), "charged once")
        let usage = try await Self.usage(restarted, of: member.id)
        // The replay is recorded too, at no cost; the 409s before it charged nothing.
        let charged = usage.filter { $0["cost"] as? String != "0" }
        #expect(charged.count == 1 && charged.first?["cost"] as? String == "0.008", "\(usage)")
        #expect(try await restarted.verify().status == 0)
        #expect(try await restarted.stop() == 0)
        await upstream.shutdown()
    }
}
