import Foundation
import TestSupport
import Testing

/// Three `sdgate serve` processes on one PostgreSQL database, each with its own data folder and no
/// folder shared between them, as on three hosts behind a load balancer: a key's rate limit and the
/// generated images are the database's, so every replica applies and serves the same ones. Needs
/// SDGATE_TEST_POSTGRES_URL (`.ci/run` sets it).
@Suite("Replicas share rate limits and images", .serialized)
struct ReplicaSharingTests {
    struct Replicas {
        let gateways: [ProxiedGateway]
        let database: String
        var ports: [Int] { gateways.map(\.port) }

        func stop() async throws {
            for gateway in gateways { #expect(try await gateway.stop() == 0) }
        }

        /// The keys that have a row of the shared rate limits.
        func rateLimitedKeys() async throws -> [String] {
            let rows = try await Command.run("psql", [database, "-tA", "-c", "SELECT key_id FROM rate_limit ORDER BY key_id"])
            #expect(rows.status == 0, "\(rows.errors)")
            return rows.output.split(separator: "\n").map(String.init)
        }

        /// Whether any replica wrote an image into its own data folder.
        var anyLocalImages: Bool {
            gateways.contains { FileManager.default.fileExists(atPath: ($0.environment["SDGATE_DATA_DIR"] ?? "") + "/generations") }
        }
    }

    static func start(_ upstream: FakeSegmindUpstream) async throws -> Replicas {
        let database = try await TestPostgres.freshDatabase("replicas")
        var gateways: [ProxiedGateway] = []
        for _ in 0..<3 {
            var environment = try ProxiedGateway.environment(
                upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
                routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: "jobs:\n  wait: 0s\n",
                base: ["SDGATE_LEDGER_DATABASE": database, "SDGATE_ADMIN_TOKEN": "replica-test-token"])
            // Each its own data folder, as on its own host.
            environment["SDGATE_DATA_DIR"] = Scratch.path("replica").path
            gateways.append(try await ProxiedGateway.start(environment: environment))
        }
        return Replicas(gateways: gateways, database: database)
    }

    @Test(.enabled(if: TestPostgres.url != nil))
    func aKeyLimitedToTenAMinuteGetsTenOfABurstOverThreeReplicasAndEveryDialect() async throws {
        let upstream = try FakeSegmindUpstream()
        let replicas = try await Self.start(upstream)
        let key = try await replicas.gateways[0].createKey(name: "rita", credits: "10", perMinute: 10)
        let burst = try await SharedRateLimitTests.burst(ports: replicas.ports, secret: key.secret, count: 100)
        #expect(burst.other.isEmpty, "\(burst.other)")
        #expect(burst.allowedCount == 10 && burst.limitedCount == 90, "\(burst)")
        #expect(burst.headersOK, "every refusal carries its dialect's rate-limit headers")
        #expect(try await replicas.rateLimitedKeys() == [key.id])
        try await replicas.stop()
        #expect(try await replicas.gateways[1].verify().status == 0)
        await upstream.shutdown()
    }

    @Test(.enabled(if: TestPostgres.url != nil))
    func aJobSubmittedToOneReplicaIsPolledAndDownloadedFromTheOthers() async throws {
        let upstream = try FakeSegmindUpstream()
        let replicas = try await Self.start(upstream)
        let (first, second, third) = (replicas.ports[0], replicas.ports[1], replicas.ports[2])
        let member = try await replicas.gateways[0].createKey(name: "uma", credits: "1")

        // Segmind v2: submitted to the first, polled from the second, its image downloaded from each.
        let submitted = try await curl([
            "-H", "x-api-key: \(member.secret)", "-H", "Content-Type: application/json", "-d", #"{"prompt": "a fox"}"#,
            "http://127.0.0.1:\(first)/v2/sdxl1.0-txt2img",
        ])
        let id = try #require(submitted.body["request_id"] as? String, "\(submitted)")
        var polled = CurlAnswer(status: 0, headers: "", body: [:])
        #expect(
            try await eventually {
                polled = try await curl(["-H", "x-api-key: \(member.secret)", "http://127.0.0.1:\(second)/v2/requests/\(id)"])
                return polled.body["status"] as? String == "COMPLETED"
            }, "\(polled)")
        let output = try #require(polled.body["output"] as? String, "\(polled)")
        #expect(output.hasPrefix("http://127.0.0.1:\(second)/generations/"))
        for port in replicas.ports { #expect(try await Self.image(at: output, on: port), "\(output) on \(port)") }

        // ModelsLab v3: `processing` from the first while the upstream holds the image back, fetched
        // from the second, and once done from the third; its links answer on every replica.
        upstream.misbehave(.wait)
        let body =
            #"{"key": "\#(member.secret)", "prompt": "a lighthouse", "width": "512", "height": "512", "samples": "2", "num_inference_steps": "25"}"#
        let processing = try await curl(["-H", "Content-Type: application/json", "-d", body, "http://127.0.0.1:\(first)/api/v3/text2img"])
        #expect(processing.body["status"] as? String == "processing", "\(processing)")
        let jobID = try #require(processing.body["id"] as? Int, "\(processing)")
        let links = try #require(processing.body["future_links"] as? [String], "\(processing)")
        #expect(links.count == 2 && links.allSatisfy { $0.hasPrefix("http://127.0.0.1:\(first)/generations/") })
        let key = #"{"key": "\#(member.secret)"}"#
        let fetched = try await curl(["-H", "Content-Type: application/json", "-d", key, "http://127.0.0.1:\(second)/api/v3/fetch/\(jobID)"])
        #expect(fetched.body["status"] as? String == "processing", "\(fetched)")
        upstream.misbehave(nil)
        var done = CurlAnswer(status: 0, headers: "", body: [:])
        #expect(
            try await eventually {
                done = try await curl(["-H", "Content-Type: application/json", "-d", key, "http://127.0.0.1:\(third)/api/v3/fetch/\(jobID)"])
                return done.body["status"] as? String == "success"
            }, "\(done)")
        let outputs = try #require(done.body["output"] as? [String], "\(done)")
        #expect(outputs.count == 2 && outputs.allSatisfy { $0.hasPrefix("http://127.0.0.1:\(third)/generations/") })
        for link in links + outputs {
            for port in replicas.ports { #expect(try await Self.image(at: link, on: port), "\(link) on \(port)") }
        }

        // Nothing in any replica's own folder; a key without a limit has no rate-limit row.
        #expect(!replicas.anyLocalImages)
        #expect(try await replicas.rateLimitedKeys().isEmpty)
        try await replicas.stop()
        #expect(try await replicas.gateways[2].credits(of: member.id) == ("0.976", "0"), "three images at 0.008")
        #expect(try await replicas.gateways[2].verify().status == 0)
        await upstream.shutdown()
    }

    @Test(.enabled(if: TestPostgres.url != nil))
    func anA1111CheckpointPickedThroughOneReplicaIsTheKeysOnTheOthers() async throws {
        let upstream = try FakeSegmindUpstream()
        let replicas = try await Self.start(upstream)
        let member = try await replicas.gateways[0].createKey(name: "ada", credits: "1")
        let other = try await replicas.gateways[0].createKey(name: "bo", credits: "1")
        let auth = ["-u", "user:\(member.secret)"]
        let picked = try await curl(
            auth + [
                "-H", "Content-Type: application/json", "-d", #"{"sd_model_checkpoint": "sd3-medium"}"#,
                "http://127.0.0.1:\(replicas.ports[0])/sdapi/v1/options",
            ])
        #expect(picked.status == 200, "\(picked)")
        for port in replicas.ports.dropFirst() {
            let options = try await curl(auth + ["http://127.0.0.1:\(port)/sdapi/v1/options"])
            #expect(options.body["sd_model_checkpoint"] as? String == "sd3-medium", "\(options)")
            // Another key keeps the default.
            let others = try await curl(["-u", "user:\(other.secret)", "http://127.0.0.1:\(port)/sdapi/v1/options"])
            #expect(others.body["sd_model_checkpoint"] as? String == "sdxl", "\(others)")
        }
        try await replicas.stop()
        await upstream.shutdown()
    }

    /// Whether the path of `url` answers an image on the replica at `port`.
    static func image(at url: String, on port: Int) async throws -> Bool {
        let path = try #require(URLComponents(string: url)?.path)
        let answer = try await Command.run(
            "curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{content_type}", "http://127.0.0.1:\(port)\(path)"])
        return answer.output == "200 image/png" || answer.output == "200 image/jpeg"
    }
}
