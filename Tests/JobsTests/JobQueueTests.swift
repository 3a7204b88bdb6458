import Foundation
import GenerationCore
import Ledger
import TestSupport
import Testing

@testable import Jobs

/// A job is read back by its UUID or by its public id in decimal, for the key and dialect that
/// queued it only; any other text finds nothing, and none can trap.
@Suite("Job queue lookups")
struct JobQueueTests {
    static func store(_ kind: String) throws -> any JobStore {
        guard kind == "sqlite" else { return InMemoryLedger() }
        return try SQLiteLedger(path: Scratch.path("queue", pathExtension: "sqlite").path)
    }

    static func enqueue(on queue: JobQueue, keyID: String) async throws -> String {
        let request = GenerationRequest(
            model: "sdxl1.0-txt2img", task: .textToImage, family: .sdxl, prompt: "a lighthouse", width: 64, height: 64, steps: 2,
            guidanceScale: 5, seed: 1)
        return try await queue.enqueue(
            GenerationJobPayload(request: request, files: ["a.png"], base64: false, meta: [:]), keyID: keyID, dialect: "modelslab",
            hold: CreditHold(id: "hold-\(keyID)"), cost: Credits(microCredits: 8000)
        ).get().id
    }

    @Test(arguments: ["memory", "sqlite"])
    func aJobIsFoundByItsDecimalPublicIDForItsOwnKeyOnly(store kind: String) async throws {
        let store = try Self.store(kind)
        let queue = JobQueue(store: store, completions: JobCompletions(), wake: {})
        let id = try await Self.enqueue(on: queue, keyID: "kowner")
        let publicID = try #require(try await store.job(id: id)).publicID

        let byUUID = try #require(await queue.job(id, of: "kowner", dialect: "modelslab"))
        #expect(byUUID.publicID == publicID)
        let byNumber = try #require(await queue.job(String(publicID), of: "kowner", dialect: "modelslab"))
        #expect(byNumber.id == id && byNumber.publicID == publicID)
        // Another key's job looks like no job at all, by either id; so does one queued through another dialect.
        #expect(await queue.job(String(publicID), of: "kother", dialect: "modelslab") == nil)
        #expect(await queue.job(id, of: "kother", dialect: "modelslab") == nil)
        #expect(await queue.job(String(publicID), of: "kowner", dialect: "segmind") == nil)
    }

    /// Links name the Host the client asked, or `localhost` when it named none (an empty Host too:
    /// its links were `http:///...`); a public URL, when set, wins.
    @Test func linksNameTheHostAskedOrOneThatAnswers() throws {
        let queue = JobQueue(store: InMemoryLedger(), completions: JobCompletions(), wake: {})
        #expect(queue.baseURL(host: "gw.example:8080") == "http://gw.example:8080")
        #expect(queue.baseURL(host: "") == "http://localhost" && queue.baseURL(host: nil) == "http://localhost")
        let published = JobQueue(store: InMemoryLedger(), completions: JobCompletions(), wake: {}, publicBaseURL: "https://sd.example/")
        #expect(published.baseURL(host: "") == "https://sd.example")
    }

    @Test(arguments: ["memory", "sqlite"])
    func junkIdsFindNothing(store kind: String) async throws {
        let queue = JobQueue(store: try Self.store(kind), completions: JobCompletions(), wake: {})
        _ = try await Self.enqueue(on: queue, keyID: "kowner")
        let junk = [
            "", "-1", "+1", "0", "12a", " 1", "1 ", "99999999999999999999", "9007199254740992", String(repeating: "9", count: 100_000),
            "\u{0661}\u{0662}", "\u{FF11}", "1\u{0}", "0x10", "1e3", "1.0",
        ]
        for id in junk { #expect(await queue.job(id, of: "kowner", dialect: "modelslab") == nil, "\(id.prefix(20))") }
    }
}
