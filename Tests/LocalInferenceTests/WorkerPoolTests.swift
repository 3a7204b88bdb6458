import Testing

@testable import LocalInference

/// The pool's hand-outs in an order that requests and workers' answers can interleave in.
@Suite("Worker pool")
struct WorkerPoolTests {
    /// A request that found every place taken, and whose place comes free before it joins the
    /// queue (the work on it ended meanwhile, on another thread), starts on it: nobody would hand
    /// that place on, and the request, with every one behind it, waited `max_wait` for nothing.
    @Test func aPlaceFreedBeforeAWaitingRequestJoinsTheQueueGoesToIt() async throws {
        var pool = WorkerPool(waiting: FairQueue(capacity: 8, capacityPerKey: 4))
        for lease in pool.up(0, ListeningWorker(url: "http://127.0.0.1:1", processIdentifier: nil, token: nil)) {
            #expect(pool.handBack(lease) == nil, "idle: nobody waits")
        }
        guard case .started(let first) = pool.admit("a") else { Issue.record("the free place at once"); return }
        guard case .waits(let id) = pool.admit("b") else { Issue.record("the place is taken"); return }
        #expect(pool.handBack(first) == nil, "nobody in the queue yet: the place goes idle")

        let queued = WorkerPool.Lease(worker: -1, life: 0, url: "queued", token: nil)
        let started = try await withCheckedThrowingContinuation { continuation in
            switch pool.join(continuation, id: id, key: "b") {
            case .started(let lease): continuation.resume(returning: lease)
            case .queued: continuation.resume(returning: queued)
            case .refused: continuation.resume(throwing: CancellationError())
            }
        }
        #expect(started == first)
        #expect(pool.waiting.isEmpty && pool.idle.isEmpty)
    }

    /// A worker that comes up again with fewer places (a remote one started again with a smaller
    /// `max_batch`) is handed out that many: its earlier life's idle places are void. They stayed
    /// idle, and were handed out to requests it answered busy.
    @Test func aWorkerUpAgainWithFewerPlacesIsHandedOutThatMany() {
        var pool = WorkerPool(waiting: FairQueue(capacity: 8, capacityPerKey: 4))
        let worker = ListeningWorker(url: "http://127.0.0.1:1", processIdentifier: nil, token: nil)
        for lease in pool.up(0, worker, capacity: 4) { #expect(pool.handBack(lease) == nil) }
        for lease in pool.up(0, worker, capacity: 2) { #expect(pool.handBack(lease) == nil) }
        var started = 0
        while case .started = pool.admit("a") { started += 1 }
        #expect(started == 2 && pool.places == 2)
    }
}
