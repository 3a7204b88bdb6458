import Foundation
import TestSupport
import Testing

/// `sdgate serve` with real worker processes on the tiny pipelines: the official `segmind` SDK (and
/// raw sockets, and curl) → the gateway → its own workers. A worker held with SIGSTOP keeps the
/// queue still while requests line up behind it, so orders are seen as they are, not timed.
@Suite("sdgate serve with local workers", .serialized, .enabled(if: TinyModels.enabled))
struct LocalServeTests {
    /// One request for each endpoint, as small as each model's ranges allow.
    static func parameters(_ slug: String, image: String, seed: Int = 5) -> [String: Any] {
        switch slug {
        case "sd1.5-img2img":
            ["image": image, "prompt": "a lighthouse", "num_inference_steps": 20, "strength": 0.1, "seed": seed, "base64": false]
        case "sdxl-img2img":
            ["image": image, "prompt": "a lighthouse", "num_inference_steps": 20, "strength": 0.1, "base_model": "sdxl", "seed": seed]
        case "sdxl1.0-txt2img":
            ["prompt": "a lighthouse", "img_width": 256, "img_height": 256, "num_inference_steps": 20, "guidance_scale": 1, "seed": seed]
        default:
            ["image": image, "prompt": "a lighthouse", "num_inference_steps": 2, "seed": seed]
        }
    }

    /// The catalog with one more size for sdxl1.0-txt2img, 256x256: the tiny SDXL pipeline attends
    /// over every latent pixel, so one of the real sizes (about a megapixel) takes minutes on a CPU.
    static let catalog: String = {
        let real = try! String(contentsOfFile: Repository.path("Config/models.yaml"), encoding: .utf8)
        let file = Scratch.path("models", pathExtension: "yaml")
        try! real.replacingOccurrences(of: "sizes: [1024x1024,", with: "sizes: [256x256, 1024x1024,").write(
            to: file, atomically: true, encoding: .utf8)
        return file.path
    }()

    static var image: String {
        get async throws { "FILE " + (try await TinyModels.inputImage).path }
    }

    /// A small SD3 request through the SDK; its status.
    static func sd3(_ gateway: ProxiedGateway, _ secret: String, image: String) async throws -> Int? {
        try await gateway.sdk(secret, "sd3-med-img2img", parameters("sd3-med-img2img", image: image))["status"] as? Int
    }

    @Test func theSDKGetsAJPEGFromEveryEndpointAndAKilledWorkerIsRestarted() async throws {
        let gateway = try await ProxiedGateway.startLocal(catalog: Self.catalog)
        let member = try await gateway.createKey(name: "alice", credits: "10")
        for slug in ["sd1.5-img2img", "sdxl-img2img", "sdxl1.0-txt2img", "sd3-med-img2img"] {
            let answer = try await gateway.sdk(member.secret, slug, Self.parameters(slug, image: try await Self.image))
            #expect(answer["status"] as? Int == 200, "\(slug): \(answer)")
            #expect((answer["images"] as? [[String: Any]])?.map { $0["format"] as? String } == ["jpeg"], "\(slug): \(answer)")
            #expect((answer["headers"] as? [String: String])?["x-seed-value"] == "5", "\(slug)")
        }
        #expect(try await gateway.usage().map { $0["backend"] as? String } == Array(repeating: "local", count: 4))

        // A request the worker will not run is the client's mistake: 422 with the worker's reason, no charge.
        let before = try await gateway.credits(of: member.id).available
        let refused = try await gateway.sdk(
            member.secret, "sd3-med-img2img",
            Self.parameters("sd3-med-img2img", image: try await Self.image).merging(["sampler": "lcm"]) { $1 })
        #expect(refused["status"] as? Int == 422, "\(refused)")
        #expect((refused["error"] as? String)?.contains("lcm") == true, "\(refused)")
        #expect(try await gateway.credits(of: member.id).available == before)

        // kill -9: the worker is restarted and the next request is served.
        let first = try #require(gateway.workerProcesses.first)
        #expect(kill(first, SIGKILL) == 0)
        #expect(await eventually(timeout: .seconds(180)) { gateway.workerProcesses.count == 2 }, "\(gateway.log)")
        let again = try await gateway.sdk(member.secret, "sd3-med-img2img", Self.parameters("sd3-med-img2img", image: try await Self.image))
        #expect(again["status"] as? Int == 200, "\(again)")

        // SIGTERM stops the workers with the gateway: none is left behind.
        let second = try #require(gateway.workerProcesses.last)
        #expect(second != first && processExists(second))
        #expect(try await gateway.stop() == 0)
        #expect(!processExists(first) && !processExists(second))
        #expect(try await gateway.verify().status == 0)
    }

    @Test func aBurstFromOneKeyDelaysAnotherKeysRequestByAtMostOneJob() async throws {
        // One worker, two waiting requests per key; health checks far apart, so a stopped worker stays in the pool.
        let gateway = try await ProxiedGateway.startLocal(extraLocal: ["queue_limit_per_key: 2", "health_check_interval: 1h"])
        let burst = try await gateway.createKey(name: "burst", credits: "10")
        let other = try await gateway.createKey(name: "other", credits: "10")
        let worker = try #require(gateway.workerProcesses.first)
        let image = try await Self.image
        #expect(kill(worker, SIGSTOP) == 0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 1...3 {
                group.addTask { _ = try await Self.sd3(gateway, burst.secret, image: image) }
            }
            // One holds the stopped worker, two wait: the key's share of the queue is full.
            #expect(await eventually(timeout: .seconds(60)) { gateway.waits(of: burst.id) == 2 }, "\(gateway.log)")
            let full = try await Self.curl(gateway.port, key: burst.secret, slug: "sd3-med-img2img", Self.parameters("sd3-med-img2img", image: image))
            #expect(full.status == 503 && full.retryAfter != nil, "\(full)")
            group.addTask { _ = try await Self.sd3(gateway, other.secret, image: image) }
            #expect(await eventually(timeout: .seconds(60)) { gateway.waits(of: other.id) == 1 }, "\(gateway.log)")
            // /metrics shows the pool as it is: one worker up, three requests waiting for it.
            let pool = try await MetricsTests.scrape("http://127.0.0.1:\(gateway.port)")
            #expect(pool.value("sdgate_workers_up") == 1)
            #expect(pool.value("sdgate_worker_queue_depth") == 3)
            #expect(kill(worker, SIGCONT) == 0)
            try await group.waitForAll()
        }
        // The order the gateway finished them in: the other key's request right after the job
        // that was already running, before the burst's two waiting ones.
        let served = try await gateway.usage().filter { $0["status"] as? Int == 200 }.map { $0["key_id"] as? String }
        #expect(served == [burst.id, other.id, burst.id, burst.id], "\(served)")
        #expect(try await gateway.stop() == 0)
    }

    @Test func aClientThatLeavesBeforeItsJobStartsIsNotCharged() async throws {
        let gateway = try await ProxiedGateway.startLocal(extraLocal: ["health_check_interval: 1h"])
        let running = try await gateway.createKey(name: "running", credits: "10")
        let leaving = try await gateway.createKey(name: "leaving", credits: "10")
        let worker = try #require(gateway.workerProcesses.first)
        let image = try await Self.image
        let parameters = Self.parameters("sd3-med-img2img", image: image)
        #expect(kill(worker, SIGSTOP) == 0)
        let first = Task { try await Self.sd3(gateway, running.secret, image: image) }
        #expect(try await eventually(timeout: .seconds(60)) { try await gateway.credits(of: running.id).held != "0" })

        // A raw client sends its request, waits until it is queued, and hangs up with a reset.
        var connection: RawSocket? = try RawSocket(port: gateway.port)
        let fd = try #require(connection?.fd)
        let body = try JSONSerialization.data(withJSONObject: Self.wireParameters(parameters))
        let head =
            "POST /v1/sd3-med-img2img HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: \(leaving.secret)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
        let bytes = Array(head.utf8) + Array(body)
        #expect(bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } == bytes.count)
        #expect(await eventually(timeout: .seconds(60)) { gateway.waits(of: leaving.id) == 1 }, "\(gateway.log)")
        #expect(try await gateway.credits(of: leaving.id).held != "0")
        // A reset says the client is gone; a FIN alone would only say it sends no more, and its
        // request would still run and be answered (RFC 9112 §9.6).
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        connection = nil
        #expect(try await eventually(timeout: .seconds(30)) { try await gateway.credits(of: leaving.id).held == "0" })

        #expect(kill(worker, SIGCONT) == 0)
        #expect(try await first.value == 200)
        let left = try await gateway.credits(of: leaving.id)
        #expect(left.available == "10" && left.held == "0", "\(left)")
        let usage = try await gateway.usage()
        #expect(!usage.contains { $0["key_id"] as? String == leaving.id && $0["status"] as? Int == 200 }, "\(usage)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
    }

    /// The official `openai` SDK against real workers: generations (inline and linked) and an
    /// edit, each charged as its model; refusals as the SDK's own exceptions, charging nothing.
    @Test func theOpenAISDKGeneratesAndEditsOnTheWorkers() async throws {
        let gateway = try await ProxiedGateway.startLocal(catalog: Self.catalog)
        let member = try await gateway.createKey(name: "alice", credits: "1")
        let result = try await OpenAITests.sdk(gateway, member.secret, "local", ["256x256"])
        #expect(result.status == 0 && result.output == "openai sdk: local ok\n", "\(result.output)\(result.errors)")
        let poor = try await gateway.createKey(name: "poor", credits: "0.001")
        let refused = try await OpenAITests.sdk(gateway, poor.secret, "poor")
        #expect(refused.status == 0, "RateLimitError for credits: \(refused.output)\(refused.errors)")
        let usage = try await gateway.usage().filter { $0["status"] as? Int == 200 }
        #expect(usage.map { $0["model"] as? String } == ["sdxl1.0-txt2img", "sdxl1.0-txt2img", "sdxl-img2img"], "\(usage)")
        #expect(usage.map { $0["backend"] as? String } == ["local", "local", "local"])
        #expect(usage.allSatisfy { $0["dialect"] as? String == "openai" })
        #expect(try await gateway.stop() == 0)
    }

    /// ModelsLab's own SDK on the v6 endpoints against real workers: a generation, an edit and fetches.
    @Test func theModelsLabSDKGeneratesAndEditsOnTheWorkers() async throws {
        let gateway = try await ProxiedGateway.startLocal(catalog: Self.catalog)
        let member = try await gateway.createKey(name: "alice", credits: "1")
        let result = try await ModelsLabV6Tests.client(gateway, member.secret, ["sdk", "sdxl", "256", "sdxl"])
        #expect(result.status == 0 && result.output == "modelslab: sdk ok\n", "\(result.output)\(result.errors)")
        let usage = try await gateway.usage()
        #expect(usage.map { $0["model"] as? String } == ["sdxl1.0-txt2img", "sdxl-img2img"], "\(usage)")
        #expect(usage.map { $0["backend"] as? String } == ["local", "local"])
        #expect(try await gateway.stop() == 0)
    }

    @Test func pastTheSpillOverQueueAModelGoesToItsUpstream() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.startLocal(
            routes: ["sd3-med-img2img": ["local", "segmind"]], extraLocal: ["spill_over_queue: 0", "health_check_interval: 1h"],
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)])
        let member = try await gateway.createKey(name: "alice", credits: "10")
        let worker = try #require(gateway.workerProcesses.first)
        let image = try await Self.image
        #expect(kill(worker, SIGSTOP) == 0)
        let running = Task { try await Self.sd3(gateway, member.secret, image: image) }
        let waiting = Task { try await Self.sd3(gateway, member.secret, image: image) }
        // One holds the stopped worker and one waits: the queue is longer than 0, so the next goes upstream.
        #expect(await eventually(timeout: .seconds(60)) { gateway.waits(of: member.id) == 1 }, "\(gateway.log)")
        let spilled = try await gateway.sdk(member.secret, "sd3-med-img2img", Self.parameters("sd3-med-img2img", image: image))
        #expect(spilled["status"] as? Int == 200, "\(spilled)")
        #expect(upstream.received.count == 1 && upstream.received.first?.path == "/v1/sd3-med-img2img")
        #expect(kill(worker, SIGCONT) == 0)
        #expect(try await running.value == 200)
        #expect(try await waiting.value == 200)
        let backends = try await gateway.usage().map { $0["backend"] as? String }
        #expect(backends == ["segmind", "local", "local"], "\(backends)")
        #expect(upstream.received.count == 1)
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    @Test func aGatewayKilledOutrightLeavesNoWorkerBehind() async throws {
        let gateway = try await ProxiedGateway.startLocal()
        let worker = try #require(gateway.workerProcesses.first)
        // The worker serves its gateway only: whoever else reaches its port gets 401, health aside.
        let url = try #require(gateway.workerURLs.first, "\(gateway.log)")
        #expect(
            try await Self.status(["-X", "POST", "-H", "Content-Type: application/json", "-d", #"{"model": "sd3-med-img2img"}"#, url + "/generate"])
                == 401)
        #expect(try await Self.status([url + "/models"]) == 401)
        #expect(try await Self.status([url + "/health"]) == 200)
        // SIGKILL: the gateway cannot stop its worker; the worker sees it gone and stops itself.
        #expect(try await gateway.gateway.stop(signal: SIGKILL) == 128 + SIGKILL)
        #expect(await eventually(timeout: .seconds(60)) { !processRuns(worker) }, "worker \(worker) outlived its gateway")
    }

    @Test func aRemoteWorkerServesTheGatewayAndOutlivesIt() async throws {
        // A worker started by hand, as on another GPU host, with the token the gateway is given too.
        let token = "remote-worker-token-\(UUID().uuidString)"
        let worker = try await Command.start(
            TinyModels.python,
            [
                "-m", "sdgate_worker", "--models", try await TinyModels.modelsFile, "--listen", "127.0.0.1:0", "--device", "cpu", "--threads", "1",
            ], environment: ["PYTHONPATH": Repository.path("Worker"), "OMP_NUM_THREADS": "1", "SDGATE_WORKER_TOKEN": token])
        var address: Substring?
        _ = await eventually(timeout: .seconds(120)) {
            address = worker.log.split(separator: "\n").first { $0.hasPrefix("sdgate-worker listening on ") }?.dropFirst(27)
            return address != nil
        }
        let url = "http://" + (try #require(address, "\(worker.log)"))
        #expect(try await Self.status([url + "/models"]) == 401)
        let gateway = try await ProxiedGateway.startLocal(
            workers: 0, extraLocal: ["remote_workers: \(url)", "remote_worker_token_env: WORKER_TOKEN"],
            environment: ["WORKER_TOKEN": token])
        #expect(await eventually(timeout: .seconds(30)) { gateway.log.contains("worker up") }, "\(gateway.log)")
        let member = try await gateway.createKey(name: "alice", credits: "1")
        let answer = try await gateway.sdk(member.secret, "sd3-med-img2img", Self.parameters("sd3-med-img2img", image: try await Self.image))
        #expect(answer["status"] as? Int == 200, "\(answer)")
        #expect((answer["images"] as? [[String: Any]])?.first?["format"] as? String == "jpeg")
        #expect(try await gateway.stop() == 0)
        // Not the gateway's to stop.
        #expect(processExists(worker.processIdentifier))
        _ = try await worker.stop(signal: SIGTERM)
    }

    /// The HTTP status curl gets with `arguments`.
    static func status(_ arguments: [String]) async throws -> Int {
        Int(try await Command.run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}"] + arguments).output) ?? 0
    }

    /// The parameters as sent on the wire: a "FILE path" image as its base64 bytes.
    static func wireParameters(_ parameters: [String: Any]) throws -> [String: Any] {
        var wire = parameters
        if let image = parameters["image"] as? String, image.hasPrefix("FILE ") {
            wire["image"] = try Data(contentsOf: URL(fileURLWithPath: String(image.dropFirst(5)))).base64EncodedString()
        }
        return wire
    }

    /// One request with curl: its status and `Retry-After`.
    static func curl(_ port: Int, key: String, slug: String, _ parameters: [String: Any]) async throws -> (status: Int, retryAfter: String?) {
        let file = Scratch.path("body", pathExtension: "json")
        try JSONSerialization.data(withJSONObject: try wireParameters(parameters)).write(to: file)
        let result = try await Command.run(
            "curl",
            [
                "-sS", "-o", "/dev/null", "-D", "-", "-H", "x-api-key: \(key)", "-H", "Content-Type: application/json",
                "--data-binary", "@\(file.path)", "http://127.0.0.1:\(port)/v1/\(slug)",
            ])
        let lines = result.output.split(separator: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let retryAfter = lines.first { $0.lowercased().hasPrefix("retry-after:") }.map {
            String($0.dropFirst(12)).trimmingCharacters(in: .whitespaces)
        }
        return (status, retryAfter)
    }
}
