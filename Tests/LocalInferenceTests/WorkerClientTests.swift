import AsyncHTTPClient
import GenerationCore
import TestSupport
import Testing

@testable import LocalInference

/// The worker's HTTP client against a worker whose answers come a byte at a time.
@Suite("Worker client")
struct WorkerClientTests {
    /// An answer's body is bounded by the call's deadline as its head is: a worker that stalls
    /// mid-answer once held its slot, and the member's request, for good; a cancel's answer, a task.
    @Test func anAnswerThatTricklesIsCutOffAtTheDeadline() async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let client = WorkerClient(http: http)
        let answer = Array(#"{"images":[],"seed":1,"generation_time":0.5}"#.utf8)

        let generating = try DrippingPeer(body: answer)
        await #expect(throws: InferenceError.timedOut) {
            try await client.generate(WorkerSupervisionTests.request, id: "1", at: generating.baseURL, token: nil, deadline: .seconds(1))
        }
        #expect(!generating.hasSentABodyWhole)

        let checked = try DrippingPeer(body: Array(#"{"status":"ok","busy":false}"#.utf8))
        #expect(await client.health(checked.baseURL, timeout: .seconds(1)) == .unreachable)
        #expect(!checked.hasSentABodyWhole)

        // A cancel's answer too: it returns, its answer unread, rather than hold a task and a connection.
        let cancelling = try DrippingPeer(body: Array(#"{"status":"ok"}"#.utf8))
        await client.cancel("1", at: cancelling.baseURL, token: nil, timeout: .seconds(1))
        #expect(!cancelling.hasSentABodyWhole)

        await generating.shutdown()
        await checked.shutdown()
        await cancelling.shutdown()
        try await http.shutdown()
    }
}
