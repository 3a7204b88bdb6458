import Foundation
import TestSupport
import Testing

/// `sdgate serve` with a batching worker (`--max-batch 4`): the gateway sends it several requests at
/// once, the worker runs the compatible ones as one pipeline call, and each key is charged for its
/// own images only. The worker is held with SIGSTOP while the requests reach it, so that they wait
/// there together, not by timing.
@Suite("sdgate serve with a batching worker", .serialized, .enabled(if: TinyModels.enabled))
struct LocalBatchingServeTests {
    @Test func aBatchMixingKeysChargesEachKeyForItsOwnImages() async throws {
        let gateway = try await ProxiedGateway.startLocal(
            extraLocal: ["health_check_interval: 1h"], workerArguments: "--device cpu --threads 1 --max-batch 4 --batch-window-ms 1000")
        #expect(gateway.log.contains("max_batch=4"), "\(gateway.log)")
        let alice = try await gateway.createKey(name: "alice", credits: "10")
        let bob = try await gateway.createKey(name: "bob", credits: "10")
        let worker = try #require(gateway.workerProcesses.first)
        let image = try await LocalServeTests.image
        #expect(kill(worker, SIGSTOP) == 0)
        // alice asks for one image, bob for three.
        async let first = Self.sd15(gateway, alice.secret, image: image, samples: 1, seed: 5)
        async let second = Self.sd15(gateway, bob.secret, image: image, samples: 3, seed: 9)
        // Both requests started (credits held), and neither waited for the worker: it takes four.
        #expect(
            try await eventually(timeout: .seconds(60)) {
                let (held, alsoHeld) = (try await gateway.credits(of: alice.id).held, try await gateway.credits(of: bob.id).held)
                return held != "0" && alsoHeld != "0"
            })
        #expect(gateway.waits(of: alice.id) == 0 && gateway.waits(of: bob.id) == 0, "\(gateway.log)")
        #expect(kill(worker, SIGCONT) == 0)
        let statuses = try await [first, second]
        #expect(statuses == [200, 200], "\(gateway.log)")
        #expect(gateway.log.contains("ran 2 requests (4 images) as one batch"), "\(gateway.log)")

        // One pipeline call, two bills: alice's one image and bob's three, at 0.004 credits each.
        let usage = try await gateway.usage()
        let costs = Dictionary(uniqueKeysWithValues: usage.compactMap { row in (row["key_id"] as? String).map { ($0, row["cost"] as? String) } })
        #expect(costs == [alice.id: "0.004", bob.id: "0.012"], "\(usage)")
        let (left, right) = (try await gateway.credits(of: alice.id), try await gateway.credits(of: bob.id))
        #expect(left.available == "9.996" && left.held == "0" && right.available == "9.988" && right.held == "0", "\(left) \(right)")
        #expect(try await gateway.stop() == 0)
        #expect(try await gateway.verify().status == 0)
    }

    /// An SD 1.5 img2img request of `samples` images through the SDK (a JSON answer: a raw image
    /// answer carries one); its status.
    static func sd15(_ gateway: ProxiedGateway, _ secret: String, image: String, samples: Int, seed: Int) async throws -> Int? {
        let parameters = LocalServeTests.parameters("sd1.5-img2img", image: image, seed: seed).merging(["samples": samples, "base64": true]) { $1 }
        return try await gateway.sdk(secret, "sd1.5-img2img", parameters)["status"] as? Int
    }
}
