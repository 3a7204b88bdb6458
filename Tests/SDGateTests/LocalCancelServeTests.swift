import Foundation
import TestSupport
import Testing

/// A running job cancelled on a real worker process (the tiny pipelines, at a size that takes
/// minutes on a CPU, so that it is surely still running): the worker stops the pipeline after
/// the step in which the cancel arrived, the job ends FAILED and `cancelled`, nothing is charged
/// (the documented rule for local GPU time stopped by its key), and the same worker serves on.
@Suite("Cancel of a running job on a local worker", .serialized, .enabled(if: TinyModels.enabled))
struct LocalCancelServeTests {
    @Test func aRunningLocalJobIsStoppedBetweenStepsAndNotCharged() async throws {
        let gateway = try await ProxiedGateway.startLocal(catalog: LocalServeTests.catalog)
        let base = "http://127.0.0.1:\(gateway.port)"
        let member = try await gateway.createKey(name: "lena", credits: "10")
        let other = try await gateway.createKey(name: "otto", credits: "10")
        let steps = 25
        let submitted = try await gateway.v2([
            "submit", member.secret, "sdxl1.0-txt2img",
            #"{"prompt": "a lighthouse", "img_width": 1024, "img_height": 1024, "num_inference_steps": \#(steps), "guidance_scale": 1, "seed": 5}"#,
        ])
        let id = try #require(submitted["request_id"] as? String, "\(submitted)")
        let mine = ["-H", "x-api-key: \(member.secret)"]
        let worker = try #require(gateway.workerURLs.first)
        let pids = gateway.workerProcesses

        // Running: claimed, and its worker busy with it.
        #expect(
            try await eventually(timeout: .seconds(120)) {
                let job = try await curl(mine + ["\(base)/v2/requests/\(id)/status"])
                let health = try await curl(["\(worker)/health"])
                return job.body["status"] as? String == "PROCESSING" && health.body["busy"] as? Bool == true
            }, "\(gateway.log)")
        let foreign = try await curl(["-H", "x-api-key: \(other.secret)", "-X", "DELETE", "\(base)/v2/requests/\(id)"])
        #expect(foreign.status == 404 && foreign.body["error"] as? String == "Request not found", "\(foreign)")

        let stopping = try await curl(mine + ["-X", "DELETE", "\(base)/v2/requests/\(id)"])
        #expect(stopping.status == 202 && stopping.body["status"] as? String == "CANCELLING", "\(stopping)")
        var ended = stopping
        #expect(
            try await eventually(timeout: .seconds(180)) {
                ended = try await curl(mine + ["\(base)/v2/requests/\(id)/status"])
                return ended.status == 422
            }, "\(ended)\n\(gateway.log)")
        #expect(ended.body["status"] as? String == "FAILED" && ended.body["cancelled"] as? Bool == true, "\(ended)")
        // The worker's own account of where it stopped: after some step, before the last.
        let message = ended.body["error"] as? String ?? ""
        let done = try #require(message.firstMatch(of: #/stopped after (\d+) of (\d+) steps/#), "\(message)")
        #expect(Int(done.2) == steps && (Int(done.1) ?? steps) < steps, "\(message)")

        // Stopped by its key: not delivered, and not charged.
        #expect(try await gateway.credits(of: member.id) == ("10", "0"))
        let usage = try await gateway.usage().filter { $0["key_id"] as? String == member.id }
        #expect(usage.count == 1 && usage.first?["status"] as? Int == 499 && usage.first?["cost"] as? String == "0", "\(usage)")

        // The same worker process serves the next request: it was stopped, not killed.
        #expect(try await LocalServeTests.sd3(gateway, member.secret, image: try await LocalServeTests.image) == 200)
        #expect(gateway.workerProcesses == pids, "\(gateway.log)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
    }
}
