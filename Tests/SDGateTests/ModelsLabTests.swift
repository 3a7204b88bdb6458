import Foundation
import GatewayAPI
import GenerationCore
import GuardedHTTP
import HTTPServer
import Jobs
import Ledger
import Logging
import TestSupport
import Testing

@testable import SDGateApp

/// The ModelsLab v3 dialect on a real server, a real SQLite ledger and job queue, the real job
/// runner and output store, with a backend from the tests; driven by a client written like the
/// ModelsLab documentation's examples.
@Suite("ModelsLab v3", .serialized)
struct ModelsLabTests {
    final class Gateway: Sendable {
        let server: HTTPServer
        let base: String
        let ledger: SQLiteLedger
        let ledgerPath: String
        let backend = FakeBackend()
        let runner: JobRunner

        /// While set, a job's reads fail (a database that took the queueing, not the read after it).
        let jobReadsFail = Flag()

        init(wait: Duration, webhooks: WebhookSender = WebhookSender(), imageFetcher: (any ImageFetcher)? = nil) async throws {
            let folder = Scratch.path("modelslab")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            ledgerPath = folder.appendingPathComponent("sdgate.sqlite").path
            ledger = try SQLiteLedger(path: ledgerPath)
            let gate = LedgerGate(
                ledger: ledger, holdLifetime: .seconds(600), clock: SystemWallClock(), logger: Logger(label: "test"),
                metricsFactory: GatewayMetrics().factory)
            let outputs = try OutputStore(folder: folder.appendingPathComponent("generations"), retention: .seconds(3600))
            let completions = JobCompletions()
            let executor = GenerationJobExecutor(backend: backend, outputs: outputs, credits: gate, store: ledger, completions: completions)
            var settings = JobRunner.Settings()
            settings.pollInterval = .milliseconds(100)
            runner = JobRunner(
                store: ledger, settings: settings, clock: SystemWallClock(), logger: Logger(label: "test"),
                execute: executor.execute, settle: executor.settle, discard: executor.discard)
            runner.start()
            var router = Router()
            ModelsLabDialect(
                admission: Admission(
                    catalog: try ModelCatalog.load(file: Repository.path("Config/models.yaml")), gate: gate,
                    images: ImageLoader(fetcher: imageFetcher)),
                jobs: JobQueue(store: FlakyJobReads(ledger, failing: jobReadsFail), completions: completions, wake: runner.wake),
                webhooks: webhooks, wait: wait
            )
            .register(on: &router)
            OutputRoutes(store: outputs).register(on: &router)
            var configuration = HTTPServer.Configuration()
            configuration.host = "127.0.0.1"
            configuration.port = 0
            server = try HTTPServer(configuration: configuration, responder: router)
            base = "http://127.0.0.1:\(try server.start().port)"
        }

        func key(credits: String) async throws -> (id: String, secret: String) {
            let (key, secret) = try await ledger.createKey(NewKey(name: "client"))
            if let amount = Credits(decimal: credits), amount > .zero { _ = try await ledger.adjust(.key(key.id), by: amount, reason: "test") }
            return (key.id, secret)
        }

        func post(_ path: String, _ body: [String: Any], form: Bool = false) async throws -> [String: Any] {
            let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
            let result = try await Command.run(
                "python3",
                [
                    Repository.path("Tests/SDGateTests/Clients/modelslab_client.py"), "post",
                    base + path, form ? "form" : "json", json,
                ])
            let answer = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any], "\(result.errors)")
            #expect(answer["http"] as? Int == 200, "every v3 answer is HTTP 200")
            return try #require(answer["body"] as? [String: Any])
        }

        func download(_ url: String) async throws -> [UInt8] {
            let result = try await Command.run("python3", [Repository.path("Tests/SDGateTests/Clients/modelslab_client.py"), "download", url])
            let answer = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
            #expect(answer?["http"] as? Int == 200, "\(url)")
            return Array(Data(base64Encoded: answer?["base64"] as? String ?? "") ?? Data())
        }

        func stop() async {
            await runner.stop()
            await server.shutdown()
        }
    }

    static let inputImage = Data(TestImages.png(width: 64, height: 64)).base64EncodedString()

    @Test func quickJobsAnswerSuccessWithTheirImagesInJSONAndForms() async throws {
        let gateway = try await Gateway(wait: .seconds(20))
        let (keyID, secret) = try await gateway.key(credits: "1")
        // text2img runs as sdxl1.0-txt2img (0.008 per image at 31 steps): numbers as strings.
        let text = try await gateway.post(
            "/api/v3/text2img",
            [
                "key": secret, "prompt": "a lighthouse", "width": "512", "height": "512",
                "samples": "2", "num_inference_steps": "31", "seed": "42", "track_id": 7,
            ])
        #expect(text["status"] as? String == "success", "\(text)")
        let urls = try #require(text["output"] as? [String])
        #expect(urls.count == 2 && urls.allSatisfy { $0.hasPrefix(gateway.base + "/generations/") })
        let prefix = try #require((text["meta"] as? [String: Any])?["file_prefix"] as? String)
        #expect(urls == [0, 1].map { "\(gateway.base)/generations/\(prefix)-\($0).png" }, "named as ModelsLab names them")
        #expect(try await gateway.download(urls[0]) == FakeBackend.outputJPEG)
        let meta = try #require(text["meta"] as? [String: Any])
        #expect(
            meta["W"] as? Int == 512 && meta["steps"] as? Int == 31 && meta["seed"] as? Int == 42
                && meta["model"] as? String == "sdxl1.0-txt2img")
        #expect(text["track_id"] as? String == "7")

        // img2img as a form, base64 "yes": the URLs hold base64 text.
        let image = try await gateway.post(
            "/api/v3/img2img",
            [
                "key": secret, "prompt": "a boat", "init_image": Self.inputImage,
                "width": "512", "height": "512", "strength": "0.5", "base64": "yes",
            ], form: true)
        #expect(image["status"] as? String == "success", "\(image)")
        let base64URL = try #require((image["output"] as? [String])?.first)
        #expect(base64URL.hasSuffix(".base64"))
        let text64 = String(decoding: try await gateway.download(base64URL), as: UTF8.self)
        #expect(Data(base64Encoded: text64).map(Array.init) == FakeBackend.outputJPEG)
        #expect(gateway.backend.requests.last?.strength == 0.5 && gateway.backend.requests.last?.model == "sd1.5-img2img")

        // v3's default 31 steps, each priced as a step of the model the endpoint runs as:
        // 2 × 0.008 × 31/25 + 0.004 × 31/20, charged exactly, and the ledger agrees with itself.
        #expect(try await gateway.ledger.balance(of: .key(keyID)).available == Credits(decimal: "0.97396"))
        #expect(try await gateway.ledger.verify().isEmpty)
        await gateway.stop()
    }

    @Test func aSlowJobAnswersProcessingAndIsFetchedBothWays() async throws {
        let gateway = try await Gateway(wait: .milliseconds(300))
        let (_, secret) = try await gateway.key(credits: "1")
        let (_, otherSecret) = try await gateway.key(credits: "1")
        gateway.backend.pause()
        let queued = try await gateway.post("/api/v3/text2img", ["key": secret, "prompt": "a slow lighthouse"])
        #expect(queued["status"] as? String == "processing", "\(queued)")
        #expect(queued["messege"] as? String == queued["message"] as? String && queued["eta"] as? Double != nil)
        let id = try #require(queued["id"] as? Int)
        #expect(queued["fetch_result"] as? String == "\(gateway.base)/api/v3/fetch/\(id)")
        let future = try #require(queued["future_links"] as? [String])
        #expect(try await gateway.post("/api/v3/fetch/\(id)", ["key": secret])["status"] as? String == "processing")
        // Another key cannot read it, nor can anyone with a made-up id.
        #expect(try await gateway.post("/api/v3/fetch/\(id)", ["key": otherSecret])["message"] as? String == "Request not found")
        #expect(try await gateway.post("/api/v3/fetch", ["key": secret, "request_id": "3a7c"])["message"] as? String == "Request not found")

        gateway.backend.resume()
        var fetched: [String: Any] = [:]
        #expect(
            await eventually {
                fetched = (try? await gateway.post("/api/v3/fetch", ["key": secret, "request_id": id])) ?? [:]
                return fetched["status"] as? String == "success"
            })
        #expect(fetched["output"] as? [String] == future, "the images are where the first answer said they would be")
        let byPath = try await gateway.post("/api/v3/fetch/\(id)", ["key": secret], form: true)
        #expect(byPath["status"] as? String == "success")
        // The usage event counts the job from queued to answered: at least the wait it outlasted.
        let usage = try await gateway.ledger.usage(keyID: nil, teamID: nil, from: 0, to: .max).filter { $0.requestID == String(id) }
        #expect(usage.count == 1 && usage[0].status == 200 && usage[0].durationMilliseconds >= 300, "\(usage)")
        await gateway.stop()
    }

    /// A job queued whose read-back fails is answered as queued, with the id to fetch it by: an
    /// error without one left the client no way to its job, which ran and was charged all the same
    /// (and a retry paid twice).
    @Test func aJobThatCannotBeReadBackIsAnsweredAsQueuedWithItsID() async throws {
        let gateway = try await Gateway(wait: .milliseconds(300))
        let (_, secret) = try await gateway.key(credits: "1")
        gateway.backend.pause()
        gateway.jobReadsFail.raise()
        let queued = try await gateway.post("/api/v3/text2img", ["key": secret, "prompt": "a lighthouse"])
        #expect(queued["status"] as? String == "processing", "\(queued)")
        let id = try #require(queued["id"] as? Int, "\(queued)")
        #expect(queued["fetch_result"] as? String == "\(gateway.base)/api/v3/fetch/\(id)")
        gateway.jobReadsFail.lower()
        gateway.backend.resume()
        #expect(
            await eventually {
                (try? await gateway.post("/api/v3/fetch/\(id)", ["key": secret]))?["status"] as? String == "success"
            })
        await gateway.stop()
    }

    @Test func aQueuedJobsCreditsStayHeldWhileItMayWaitInTheQueue() async throws {
        let gateway = try await Gateway(wait: .milliseconds(100))
        let (keyID, secret) = try await gateway.key(credits: "1")
        gateway.backend.pause()
        #expect(try await gateway.post("/api/v3/text2img", ["key": secret, "prompt": "a queued lighthouse"])["status"] as? String == "processing")
        // Held for the hold lifetime (600 s here) plus the longest time in the queue (1 h by default).
        let reserved = SystemWallClock().millisecondsNow
        #expect(try await gateway.ledger.expireHolds(now: reserved + 600_000 + 60_000) == 0, "a request's lifetime is not enough for a job")
        #expect(try await gateway.ledger.balance(of: .key(keyID)).held == Credits(decimal: "0.00992"), "0.008 × 31/25")
        #expect(try await gateway.ledger.expireHolds(now: reserved + 600_000 + 3_600_000 + 60_000) == 1)
        gateway.backend.resume()
        await gateway.stop()
    }

    @Test func everyErrorIsA200WithItsStatusAndNothingIsCharged() async throws {
        let gateway = try await Gateway(wait: .seconds(20))
        let (keyID, secret) = try await gateway.key(credits: "0.005")
        let (_, broke) = try await gateway.key(credits: "0")

        let badKey = try await gateway.post("/api/v3/text2img", ["key": "sdg_kxxxxxxxx_nope", "prompt": "x"])
        #expect(
            badKey["status"] as? String == "error" && badKey["message"] as? String == "Invalid Api Key"
                && badKey["messege"] as? String == "Invalid Api Key")
        let invalid = try await gateway.post("/api/v3/text2img", ["key": secret, "width": "500", "samples": "9"])
        let problems = try #require(invalid["message"] as? [String: [String]], "\(invalid)")
        #expect(problems["width"] == ["must be divisible by 8, got 500"])
        #expect(problems["samples"] == ["must be between 1 and 4, got 9"])
        #expect(problems["prompt"] == ["is required"])
        let unchecked = try await gateway.post("/api/v3/text2img", ["key": secret, "prompt": "x", "safety_checker": "yes"])
        #expect((unchecked["message"] as? String)?.contains("no NSFW checker is configured") == true)
        let poor = try await gateway.post("/api/v3/text2img", ["key": broke, "prompt": "x"])
        #expect(poor["message"] as? String == "Insufficient credits. Please add more credits to continue.")
        let badImage = try await gateway.post("/api/v3/img2img", ["key": secret, "prompt": "x", "init_image": "not an image"])
        #expect((badImage["message"] as? String)?.hasPrefix("Unable to fetch image from provided URL") == true)

        gateway.backend.fail(with: .failed("out of memory on the GPU"))
        let failed = try await gateway.post(
            "/api/v3/img2img", ["key": secret, "prompt": "x", "init_image": Self.inputImage, "num_inference_steps": "20"])
        #expect(failed["status"] as? String == "failed" && failed["message"] as? String == "out of memory on the GPU", "\(failed)")
        #expect(try await gateway.ledger.balance(of: .key(keyID)) == Balance(balance: Credits(decimal: "0.005")!, held: .zero))
        #expect(try await gateway.ledger.verify().isEmpty)
        // Each refusal of a known key is in the usage report, with the status it stands for (counted
        // with the others of its status and minute); the failed job with its own.
        let statuses = try await gateway.ledger.usage(keyID: nil, teamID: nil, from: 0, to: .max).flatMap {
            Array(repeating: $0.status, count: $0.requests)
        }
        #expect(statuses.sorted() == [400, 406, 422, 422, 500], "\(statuses)")
        await gateway.stop()
    }

    /// A webhook URL whose host cannot be looked up now (the gateway's lookups all wait on slow DNS
    /// servers) is the gateway's refusal, not the URL's: a retry may pass, so it is not called an
    /// invalid webhook. Nothing is charged.
    @Test func aWebhookHostThatCannotBeLookedUpNowIsRefusedAsBusy() async throws {
        let gateway = try await Gateway(wait: .seconds(20), webhooks: WebhookSender(resolver: HostResolver(maxBlocked: 0)))
        let (keyID, secret) = try await gateway.key(credits: "1")
        let answer = try await gateway.post("/api/v3/text2img", ["key": secret, "prompt": "x", "webhook": "https://hooks.example/done"])
        #expect(answer["status"] as? String == "error")
        #expect(answer["message"] as? String == "webhook: the gateway is resolving too many hosts at once; retry shortly", "\(answer)")
        #expect(try await gateway.ledger.balance(of: .key(keyID)) == Balance(balance: Credits(decimal: "1")!, held: .zero))
        let statuses = try await gateway.ledger.usage(keyID: keyID, teamID: nil, from: 0, to: .max).map(\.status)
        #expect(statuses == [503])
        await gateway.stop()
    }
}

/// A job store whose reads of one job fail while `failing` is raised; the rest is the ledger's.
private struct FlakyJobReads: JobStore {
    let ledger: SQLiteLedger
    let failing: Flag

    init(_ ledger: SQLiteLedger, failing: Flag) {
        self.ledger = ledger
        self.failing = failing
    }

    func job(id: String) async throws(LedgerError) -> JobRecord? {
        if failing.isRaised { throw .storage("the read failed") }
        return try await ledger.job(id: id)
    }

    func job(publicID: Int64) async throws(LedgerError) -> JobRecord? {
        if failing.isRaised { throw .storage("the read failed") }
        return try await ledger.job(publicID: publicID)
    }

    func enqueueJob(_ job: NewJob) async throws(LedgerError) -> JobRecord { try await ledger.enqueueJob(job) }
    func queuedJobCount() async throws(LedgerError) -> Int { try await ledger.queuedJobCount() }
    func claimJob(leaseUntil: Timestamp) async throws(LedgerError) -> JobRecord? { try await ledger.claimJob(leaseUntil: leaseUntil) }
    func renewJobLease(id: String, attempt: Int, until: Timestamp) async throws(LedgerError) -> Bool {
        try await ledger.renewJobLease(id: id, attempt: attempt, until: until)
    }
    func finishJob(id: String, attempt: Int, state: JobState, result: [UInt8]?, error: String?) async throws(LedgerError) -> Bool {
        try await ledger.finishJob(id: id, attempt: attempt, state: state, result: result, error: error)
    }
    func recoverAbandonedJobs(now: Timestamp, maxAttempts: Int) async throws(LedgerError) -> [JobRecord] {
        try await ledger.recoverAbandonedJobs(now: now, maxAttempts: maxAttempts)
    }
    func expireQueuedJobs(queuedBefore cutoff: Timestamp) async throws(LedgerError) -> [JobRecord] {
        try await ledger.expireQueuedJobs(queuedBefore: cutoff)
    }
    func purgeJobs(finishedBefore cutoff: Timestamp) async throws(LedgerError) -> Int { try await ledger.purgeJobs(finishedBefore: cutoff) }
    func cancelJob(id: String) async throws(LedgerError) -> JobCancellation { try await ledger.cancelJob(id: id) }
    func queuedJobs() async throws(LedgerError) -> [QueuedJob] { try await ledger.queuedJobs() }
    func settleJob(_ settlement: JobSettlement) async throws(LedgerError) -> Bool { try await ledger.settleJob(settlement) }
    func unsettledJobIDs(limit: Int) async throws(LedgerError) -> [String] { try await ledger.unsettledJobIDs(limit: limit) }
}
