import Foundation
import TestSupport
import Testing

/// Segmind's asynchronous API through `sdgate serve`, driven by the official `segmind` SDK's v2
/// path (`run`, `submit_async(...).wait()`), with a fake Segmind upstream generating.
@Suite("Segmind v2 through sdgate serve", .serialized)
struct SegmindV2Tests {
    static func start(_ upstream: FakeSegmindUpstream, extraYAML: String = "") async throws -> ProxiedGateway {
        try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key, deadline: "10m")],
            routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: extraYAML)
    }

    @Test func theSDKsRunAndSubmitAsyncWaitComplete() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await Self.start(upstream)
        let member = try await gateway.createKey(name: "uma", credits: "1")
        let other = try await gateway.createKey(name: "otto", credits: "1")

        // run(): two samples, numbers as strings, each image a file of the gateway's output store.
        let run = try await gateway.v2(["run", member.secret, "sdxl1.0-txt2img", #"{"prompt": "a fox", "samples": "2", "seed": "77"}"#])
        let result = try #require(run["result"] as? [String: Any], "\(run)")
        #expect(result["status"] as? String == "COMPLETED" && result["seed"] as? Int == 77)
        let outputs = try #require(result["output"] as? [String])
        #expect(outputs.count == 2 && outputs.allSatisfy { $0.hasPrefix("http://127.0.0.1:\(gateway.port)/generations/") })
        #expect(
            (run["images"] as? [[String: Any]])?.allSatisfy { $0["format"] as? String == "png" && $0["width"] as? Int == 1024 } == true,
            "the upstream's images, as it made them")
        #expect(((result["metrics"] as? [String: Any])?["inference_time"] as? Double) != nil)

        // submit_async(...).wait(): one sample, one URL.
        let waited = try await gateway.v2(["submit-wait", member.secret, "sdxl1.0-txt2img", #"{"prompt": "an owl", "base64": false}"#])
        let single = try #require(waited["result"] as? [String: Any], "\(waited)")
        #expect(single["status"] as? String == "COMPLETED" && single["output"] is String)

        // Another key cannot read a job: 404, as for an id that does not exist.
        let submitted = try await gateway.v2(["submit", member.secret, "sdxl1.0-txt2img", #"{"prompt": "a hare"}"#])
        #expect(submitted["status"] as? String == "QUEUED" && submitted["poll_url"] as? String != nil)
        let json = String(decoding: try JSONSerialization.data(withJSONObject: submitted), as: UTF8.self)
        let foreign = try await gateway.v2(["status", other.secret, json])
        #expect(foreign["status"] as? Int == 404 && foreign["error"] as? String == "Request not found", "\(foreign)")
        let owned = try await gateway.v2(["wait", member.secret, json])
        #expect((owned["result"] as? [String: Any])?["status"] as? String == "COMPLETED")
        let legacy = try await curl(["-H", "x-api-key: \(member.secret)", submitted["poll_url"] as? String ?? ""])
        #expect(legacy.status == 200 && (legacy.body["output"] as? String)?.contains("/generations/") == true, "\(legacy)")

        // Four images at 0.008 each; each job's usage recorded once, when it ended.
        #expect(try await gateway.credits(of: member.id) == ("0.968", "0"))
        let usage = try await gateway.usage().filter { $0["key_id"] as? String == member.id }
        #expect(usage.count == 3 && usage.allSatisfy { $0["status"] as? Int == 200 }, "\(usage)")
        // And which upstream served each job, with what it said it cost, as for a synchronous request.
        #expect(usage.allSatisfy { $0["backend"] as? String == "segmind" && $0["upstream_cost"] as? String == upstream.cost }, "\(usage)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        #expect(!gateway.log.contains(member.secret))
        await upstream.shutdown()
    }

    @Test func aFailedJobRaisesInferenceFailedWithTheGatewaysMessageAndChargesNothing() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await Self.start(upstream)
        let member = try await gateway.createKey(name: "fay", credits: "0.01")
        upstream.misbehave(.serverError)
        let failed = try await gateway.v2(["run", member.secret, "sdxl1.0-txt2img", #"{"prompt": "a fox"}"#])
        #expect(failed["failed"] as? String == "the upstream failed (HTTP 500)", "\(failed)")
        let submitted = try await gateway.v2(["submit", member.secret, "sdxl1.0-txt2img", #"{"prompt": "a fox"}"#])
        #expect(
            await eventually(timeout: .seconds(30)) {
                let answer = (try? await curl(["-H", "x-api-key: \(member.secret)", submitted["response_url"] as? String ?? ""]))
                return answer?.status == 422 && answer?.body["status"] as? String == "FAILED"
                    && answer?.body["error"] as? String == "the upstream failed (HTTP 500)"
            }, "a FAILED job's result is served under HTTP 422, as Segmind does")

        // Refused at submission, each as v1 refuses it, and nothing queued.
        upstream.misbehave(nil)
        #expect(try await gateway.v2(["run", "sdg_kxxxxxxxx_nope", "sdxl1.0-txt2img", #"{"prompt": "x"}"#])["status"] as? Int == 401)
        let invalid = try await gateway.v2(["run", member.secret, "sdxl1.0-txt2img", #"{"prompt": "x", "samples": 9}"#])
        #expect(invalid["status"] as? Int == 422 && invalid["error"] as? String == "samples: must be between 1 and 4, got 9")
        let poor = try await gateway.v2(["run", member.secret, "sdxl1.0-txt2img", #"{"prompt": "x", "samples": 2}"#])
        #expect(poor["status"] as? Int == 406 && poor["error"] as? String == "Insufficient credits")

        #expect(try await gateway.credits(of: member.id) == ("0.01", "0"), "nothing charged, nothing left held")
        let statuses = try await gateway.usage().compactMap { $0["status"] as? Int }
        #expect(statuses.sorted() == [406, 422, 500, 500], "the two failed jobs and both refusals of a known key")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    @Test func urlsAreBuiltFromTheConfiguredPublicURL() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.misbehave(.stall)
        let gateway = try await Self.start(upstream, extraYAML: "public_url: https://images.team.example/\n")
        let member = try await gateway.createKey(name: "pia", credits: "1")
        let submitted = try await curl([
            "-H", "x-api-key: \(member.secret)", "-H", "Content-Type: application/json", "-d", #"{"prompt": "x"}"#,
            "http://127.0.0.1:\(gateway.port)/v2/sdxl1.0-txt2img",
        ])
        let id = try #require(submitted.body["request_id"] as? String, "\(submitted)")
        #expect(submitted.body["status_url"] as? String == "https://images.team.example/v2/requests/\(id)/status")
        #expect(submitted.body["response_url"] as? String == "https://images.team.example/v2/requests/\(id)")
        #expect(submitted.body["poll_url"] as? String == "https://images.team.example/v1/requests/\(id)")
        #expect(submitted.headers.contains("x-remaining-credits: 0.992"), "the job's price is held")
        let status = try await curl(["-H", "x-api-key: \(member.secret)", "http://127.0.0.1:\(gateway.port)/v2/requests/\(id)/status"])
        #expect(["QUEUED", "PROCESSING"].contains(status.body["status"] as? String ?? ""))
        #expect(status.body["response_url"] as? String == "https://images.team.example/v2/requests/\(id)")
        let keyless = try await curl(["http://127.0.0.1:\(gateway.port)/v2/requests/\(id)/status"])
        #expect(keyless.status == 401)
        upstream.misbehave(nil)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }
}

/// An answer as curl saw it: status, raw head, and the body as a JSON object.
struct CurlAnswer: CustomStringConvertible {
    let status: Int
    let headers: String
    let body: [String: Any]

    var description: String { "\(status) \(body)" }
}

/// A request with curl (`-sS -i` and the arguments given), its answer parsed.
func curl(_ arguments: [String]) async throws -> CurlAnswer {
    let result = try await Command.run("curl", ["-sS", "-i"] + arguments)
    let parts = result.output.components(separatedBy: "\r\n\r\n")
    let head = parts.first ?? ""
    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
    let body = (try? JSONSerialization.jsonObject(with: Data(parts.dropFirst().joined(separator: "\r\n\r\n").utf8))) as? [String: Any] ?? [:]
    return CurlAnswer(status: status, headers: head.lowercased(), body: body)
}

extension ProxiedGateway {
    /// One call of `Clients/segmind_v2.py` (the official SDK's v2 path): its printed JSON.
    func v2(_ arguments: [String]) async throws -> [String: Any] {
        let script = Repository.path("Tests/SDGateTests/Clients/segmind_v2.py")
        let result = try await Command.run("python3", [script, arguments[0], "\(port)"] + arguments.dropFirst())
        #expect(result.status == 0, "\(result.errors)")
        return try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
    }
}
