import Foundation
import GenerationCore
import TestSupport
import Testing

/// The accountant's check after a mix of what members send and what upstreams do, through the real
/// `sdgate serve`: every answer that delivered images has exactly one usage row, with the charge the
/// answer stated; no other answer moved a credit; each key's balance is what its rows say; nothing
/// stays held; and the ledger verifies.
@Suite("Ledger reconciliation", .serialized)
struct LedgerReconciliationTests {
    struct Answered: CustomStringConvertible {
        let route: String
        let requestID: String
        let status: Int
        let delivered: Bool
        /// Images in the answer.
        let images: Int
        /// `x-cost`, where the dialect states it.
        let cost: String?

        var description: String { "\(route) \(status) \(requestID) delivered=\(delivered) images=\(images) cost=\(cost ?? "-")" }
    }

    static func header(_ name: String, in head: String) -> String? {
        head.split(separator: "\r\n").first { $0.hasPrefix(name + ":") }.map {
            String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces)
        }
    }

    @Test func answersAndUsageRowsAgree() async throws {
        let segmind = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: segmind.baseURL, key: segmind.key, deadline: "10s")],
            routes: ["sdxl1.0-txt2img": ["segmind"]])
        let alice = try await gateway.createKey(name: "alice", credits: "50")
        let poor = try await gateway.createKey(name: "poor", credits: "0.000001")
        let base = "http://127.0.0.1:\(gateway.port)"
        var answers: [Answered] = []

        func v1(_ secret: String, _ body: String) async throws {
            let answer = try await curl([
                "-H", "x-api-key: \(secret)", "-H", "Content-Type: application/json", "-d", body, "\(base)/v1/sdxl1.0-txt2img",
            ])
            // One image comes back as its bytes, several (or base64) as JSON that counts them.
            answers.append(
                Answered(
                    route: "v1", requestID: Self.header("x-request-id", in: answer.headers) ?? "", status: answer.status,
                    delivered: answer.status == 200, images: answer.body["outputs"] as? Int ?? 1,
                    cost: Self.header("x-cost", in: answer.headers)))
        }
        func v3(_ secret: String, samples: Int = 1) async throws {
            // The model's own 25 steps (v3's default is 31): the same image as the v1 requests'.
            let body =
                #"{"key": "\#(secret)", "prompt": "a lighthouse", "width": 512, "height": 512, "samples": \#(samples), "num_inference_steps": 25}"#
            let answer = try await curl(["-H", "Content-Type: application/json", "-d", body, "\(base)/api/v3/text2img"])
            // A v3 call is a job: its usage row carries the job's id, which the answer gives.
            answers.append(
                Answered(
                    route: "v3", requestID: answer.body["id"].map { "\($0)" } ?? "", status: answer.status,
                    delivered: answer.body["status"] as? String == "success", images: (answer.body["output"] as? [Any])?.count ?? 0,
                    cost: nil))
        }

        let upstreamBehaviours: [UpstreamMisbehaviour?] = [nil, .serverError, .garbage, .rejectKey, .outOfCredits, .rateLimited, .cutMidBody, nil]
        for behaviour in upstreamBehaviours {
            segmind.misbehave(behaviour)
            try await v1(alice.secret, #"{"prompt": "a lighthouse", "samples": 2}"#)
            try await v3(alice.secret)
        }
        segmind.misbehave(nil)
        // An upstream that delivers one image of the four asked for: charged for one.
        segmind.imagesAnswered = 1
        try await v1(alice.secret, #"{"prompt": "a lighthouse", "samples": 4, "base64": true}"#)
        try await v3(alice.secret, samples: 4)
        segmind.imagesAnswered = nil
        // The member's own mistakes and limits: refused before any upstream call.
        try await v1(alice.secret, #"{"prompt": "a lighthouse", "num_inference_steps": "0x19"}"#)
        try await v1(alice.secret, #"{"prompt": "a lighthouse", "samples": 1000}"#)
        try await v1(poor.secret, #"{"prompt": "a lighthouse"}"#)
        try await v3(poor.secret)

        #expect(answers.filter(\.delivered).count == 6, "\(answers)")
        #expect(answers.filter(\.delivered).suffix(2).map(\.images) == [1, 1], "the upstream delivered one of four: \(answers)")
        #expect(answers.filter { $0.route == "v1" }.allSatisfy { !$0.requestID.isEmpty }, "\(answers)")
        let rows = try await gateway.usage()
        var charged: [String: Credits] = [:]
        for row in rows {
            let cost = try #require(Credits(decimal: row["cost"] as? String ?? ""), "\(row)")
            charged[row["key_id"] as? String ?? "", default: .zero] = charged[row["key_id"] as? String ?? "", default: .zero] + cost
        }
        // Every delivered image of this model costs the same: the charge is per image delivered.
        let unitCosts = Set(
            answers.filter(\.delivered).compactMap { answer -> Int64? in
                let cost = rows.first { $0["request_id"] as? String == answer.requestID }?["cost"] as? String
                return cost.flatMap { Credits(decimal: $0) }.map { $0.microCredits / Int64(max(answer.images, 1)) }
            })
        #expect(unitCosts.count == 1, "\(unitCosts)")
        for answer in answers {
            let matching = answer.requestID.isEmpty ? [] : rows.filter { $0["request_id"] as? String == answer.requestID }
            if answer.delivered {
                #expect(matching.count == 1, "\(answer): \(matching)")
                let cost = matching.first?["cost"] as? String
                #expect(cost != nil && cost != "0", "\(answer): \(matching)")
                if let stated = answer.cost { #expect(cost == stated, "\(answer): \(matching)") }
            } else {
                #expect(matching.allSatisfy { $0["cost"] as? String == "0" }, "charged for nothing: \(answer): \(matching)")
            }
        }
        for (key, funded) in [(alice, "50"), (poor, "0.000001")] {
            let credits = try await gateway.credits(of: key.id)
            #expect(credits.held == "0", "\(key.id) still holds \(credits.held)")
            let available = try #require(Credits(decimal: credits.available))
            #expect(try #require(Credits(decimal: funded)) - available == charged[key.id, default: .zero], "\(key.id)")
        }
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await segmind.shutdown()
    }
}
