import Foundation
import TestSupport
import Testing

/// Jobs a member steers, through `sdgate serve` with a fake Segmind upstream held open so that
/// jobs queue behind one running job (one runner): the official `segmind` SDK submits, curl and a
/// ModelsLab-style `requests` client cancel and poll. A queued job cancelled is removed and its
/// hold voided; a running upstream job cancelled runs to its end, is charged and not delivered;
/// another key's cancel finds nothing; positions and ETAs move as the jobs ahead end, and
/// `system_load` says the same.
@Suite("Jobs a member steers through sdgate serve", .serialized)
struct JobSteeringServeTests {
    static func start(_ upstream: FakeSegmindUpstream) async throws -> ProxiedGateway {
        try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key, deadline: "10m")],
            routes: ["sdxl1.0-txt2img": ["segmind"]], extraYAML: "jobs:\n  concurrency: 1\n  wait: 0s\n")
    }

    static func modelsLab(_ gateway: ProxiedGateway, _ path: String, _ body: [String: Any]) async throws -> [String: Any] {
        let client = Repository.path("Tests/SDGateTests/Clients/modelslab_client.py")
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let call = try await Command.run("python3", [client, "post", "http://127.0.0.1:\(gateway.port)\(path)", "json", json])
        let answer = try JSONSerialization.jsonObject(with: Data(call.output.utf8)) as? [String: Any]
        #expect(answer?["http"] as? Int == 200, "every ModelsLab answer is HTTP 200: \(call.output) \(call.errors)")
        return answer?["body"] as? [String: Any] ?? [:]
    }

    static func amount(_ text: String) -> Decimal { Decimal(string: text) ?? .nan }

    @Test func cancelsPositionsETAsAndSystemLoad() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await Self.start(upstream)
        let base = "http://127.0.0.1:\(gateway.port)"
        let member = try await gateway.createKey(name: "mia", credits: "1")
        let other = try await gateway.createKey(name: "oscar", credits: "1")
        let mine = ["-H", "x-api-key: \(member.secret)"], theirs = ["-H", "x-api-key: \(other.secret)"]
        func status(_ id: String) async throws -> CurlAnswer { try await curl(mine + ["\(base)/v2/requests/\(id)/status"]) }
        func load() async throws -> [String: Any] { try await Self.modelsLab(gateway, "/api/v3/system_load", ["key": member.secret]) }

        // One job runs (held upstream), three wait behind it.
        upstream.misbehave(.wait)
        var ids: [String] = []
        for prompt in ["one", "two", "three", "four"] {
            let submitted = try await gateway.v2(["submit", member.secret, "sdxl1.0-txt2img", #"{"prompt": "\#(prompt)"}"#])
            ids.append(try #require(submitted["request_id"] as? String, "\(submitted)"))
        }
        #expect(await eventually { upstream.stalledCount == 1 })
        var standing: [(position: Int, eta: Double)] = []
        for id in ids.dropFirst() {
            let answer = try await status(id)
            #expect(answer.status == 200 && answer.body["status"] as? String == "QUEUED", "\(answer)")
            standing.append((answer.body["queue_position"] as? Int ?? -1, answer.body["eta"] as? Double ?? -1))
        }
        #expect(standing.map(\.position) == [1, 2, 3], "\(standing)")
        #expect(standing[0].eta > 0 && standing[0].eta < standing[1].eta && standing[1].eta < standing[2].eta, "\(standing)")
        let running = try await status(ids[0])
        #expect(running.body["status"] as? String == "PROCESSING" && running.body["queue_position"] as? Int == 0, "\(running)")
        let held = Self.amount(try await gateway.credits(of: member.id).held)

        // Another key's cancel, and ids that name nothing: 404 in Segmind's shape, nothing changes.
        for arguments in [["-X", "DELETE", "\(base)/v2/requests/\(ids[3])"], ["-X", "POST", "\(base)/v2/requests/\(ids[3])/cancel"]] {
            let foreign = try await curl(theirs + arguments)
            #expect(foreign.status == 404 && foreign.body["error"] as? String == "Request not found", "\(foreign)")
        }
        for junk in ["not-a-job", String(repeating: "9", count: 40), "-1", "0"] {
            let answer = try await curl(mine + ["-X", "DELETE", "\(base)/v2/requests/\(junk)"])
            #expect(answer.status == 404 && answer.body["error"] as? String == "Request not found", "\(junk): \(answer)")
        }
        let keyless = try await curl(["-X", "DELETE", "\(base)/v2/requests/\(ids[3])"])
        #expect(keyless.status == 401 && keyless.body["error"] != nil, "\(keyless)")
        let wrongMethod = try await curl(mine + ["-X", "PUT", "\(base)/v2/requests/\(ids[3])"])
        #expect(wrongMethod.status == 405 && wrongMethod.headers.contains("allow: get, delete"), "\(wrongMethod)")
        #expect(try await status(ids[3]).body["queue_position"] as? Int == 3)
        #expect(Self.amount(try await gateway.credits(of: member.id).held) == held)

        // The owner cancels a queued job: removed, its hold voided at once, FAILED and `cancelled` when polled.
        let removed = try await curl(mine + ["-X", "DELETE", "\(base)/v2/requests/\(ids[3])"])
        #expect(removed.status == 200 && removed.body["status"] as? String == "CANCELLED", "\(removed)")
        let price = held - Self.amount(try await gateway.credits(of: member.id).held)
        #expect(price > 0 && held == 4 * price, "one job's hold of four was voided")
        let cancelled = try await status(ids[3])
        #expect(cancelled.status == 422 && cancelled.body["status"] as? String == "FAILED" && cancelled.body["cancelled"] as? Bool == true)
        let again = try await curl(mine + ["-X", "POST", "\(base)/v2/requests/\(ids[3])/cancel"])
        #expect(again.status == 409, "\(again)")

        // A ModelsLab v3 job joins the queue: `processing` with its place; its owner cancels it, another key cannot.
        let v3 = try await Self.modelsLab(gateway, "/api/v3/text2img", ["key": member.secret, "prompt": "five", "width": "512", "height": "512"])
        #expect(v3["status"] as? String == "processing" && v3["queue_position"] as? Int == 3 && (v3["eta"] as? Double ?? 0) > 0, "\(v3)")
        let v3ID = try #require(v3["id"] as? Int)
        let systemLoad = try await load()
        #expect(systemLoad["status"] as? String == "ok" && systemLoad["queue_num"] as? Int == 3, "\(systemLoad)")
        for (body, message) in [
            (["key": other.secret], "Request not found"), (["key": member.secret, "request_id": "abc"], "Request not found"),
            (["key": member.secret, "request_id": String(repeating: "9", count: 30)], "Request not found"),
            (["key": member.secret], "request_id: is required"), (["key": "sdg_knope_nope"], "Invalid Api Key"),
        ] {
            let path = body["key"] == other.secret ? "/api/v3/cancel/\(v3ID)" : "/api/v3/cancel"
            let refused = try await Self.modelsLab(gateway, path, body)
            #expect(refused["status"] as? String == "error" && refused["message"] as? String == message, "\(body): \(refused)")
        }
        for path in ["/api/v3/cancel/\(v3ID)", "/api/v3/system_load"] {
            let wrong = try await curl(["\(base)\(path)"])
            #expect(wrong.status == 405 && wrong.body["status"] as? String == "error" && wrong.headers.contains("allow: post"), "\(wrong)")
        }
        let v3Cancel = try await Self.modelsLab(gateway, "/api/v3/cancel/\(v3ID)", ["key": member.secret])
        #expect(v3Cancel["status"] as? String == "success" && v3Cancel["id"] as? Int == v3ID, "\(v3Cancel)")
        let fetched = try await Self.modelsLab(gateway, "/api/v3/fetch/\(v3ID)", ["key": member.secret])
        #expect(fetched["status"] as? String == "failed" && fetched["cancelled"] as? Bool == true, "\(fetched)")
        #expect(Self.amount(try await gateway.credits(of: member.id).held) == 3 * price, "its hold voided too")

        // The running job is cancelled: it runs to its end upstream, is charged, and is not delivered.
        let stopping = try await curl(mine + ["-X", "POST", "\(base)/v2/requests/\(ids[0])/cancel"])
        #expect(stopping.status == 202 && stopping.body["status"] as? String == "CANCELLING", "\(stopping)")
        #expect(try await status(ids[0]).body["cancel_requested"] as? Bool == true)
        let before = try await status(ids[2])
        #expect(upstream.answerOne(), "the upstream answers the cancelled job")
        var after = before
        #expect(
            try await eventually {
                after = try await status(ids[2])
                return after.body["queue_position"] as? Int == 1
            }, "\(after)")
        let ended = try await curl(mine + ["\(base)/v2/requests/\(ids[0])"])
        #expect(ended.status == 422 && ended.body["cancelled"] as? Bool == true && ended.body["output"] == nil, "\(ended)")
        let charged = try await gateway.credits(of: member.id)
        #expect(Self.amount(charged.available) + Self.amount(charged.held) == 1 - price, "charged, as the upstream charged the team: \(charged)")

        // Positions and ETAs move as the jobs ahead end, and system_load agrees.
        #expect(before.body["queue_position"] as? Int == 2)
        #expect((after.body["eta"] as? Double ?? .infinity) < (before.body["eta"] as? Double ?? 0), "\(before) \(after)")
        let asked = ContinuousClock.now
        let lastETA = try #require(try await status(ids[2]).body["eta"] as? Double)
        let loaded = try await load()
        let drift = (ContinuousClock.now - asked).components.seconds + 1
        #expect(loaded["queue_num"] as? Int == 1, "\(loaded)")
        #expect(abs((loaded["queue_time"] as? Double ?? -100) - lastETA) <= Double(drift), "\(loaded) vs \(lastETA)")
        #expect(upstream.answerOne(), "the second job ends")
        #expect(try await eventually { try await status(ids[2]).body["queue_position"] as? Int == 0 })
        #expect(try await load()["queue_num"] as? Int == 0)
        #expect(upstream.answerOne(), "the third job ends")
        #expect(try await eventually { try await status(ids[2]).body["status"] as? String == "COMPLETED" })

        // Three jobs charged (the cancelled running one among them), two voided; each cancel in the usage.
        let left = try await gateway.credits(of: member.id)
        #expect(Self.amount(left.available) == 1 - 3 * price && left.held == "0", "\(left)")
        let usage = try await gateway.usage().filter { $0["key_id"] as? String == member.id }
        #expect(usage.filter { $0["status"] as? Int == 499 }.count == 3, "\(usage)")
        #expect(try await gateway.credits(of: other.id) == ("1", "0"))

        // Segmind's balance call: what the key can spend now, as x-remaining-credits says it.
        let balance = try await curl(mine + ["\(base)/v1/get-user-credits"])
        #expect(balance.status == 200 && balance.body["free-credits"] as? Int == 0, "\(balance)")
        #expect(balance.body["credits"] as? Double == Double(left.available), "\(balance) vs \(left)")
        #expect(balance.headers.contains("x-remaining-credits: \(left.available)"), "\(balance.headers)")
        #expect(try await curl(["\(base)/v1/get-user-credits"]).status == 401)
        #expect(try await curl(["-H", "x-api-key: sdg_knope_nope", "\(base)/v1/get-user-credits"]).status == 401)
        #expect(try await curl(mine + ["-X", "DELETE", "\(base)/v1/get-user-credits"]).status == 405)

        #expect(try await gateway.verify().status == 0)
        upstream.misbehave(nil)
        #expect(try await gateway.stop() == 0)
        #expect(!gateway.log.contains(member.secret))
        await upstream.shutdown()
    }
}
