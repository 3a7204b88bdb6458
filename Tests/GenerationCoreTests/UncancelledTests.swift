import Dispatch
import Synchronization
import Testing

@testable import GenerationCore

@Suite("uncancelled")
struct UncancelledTests {
    /// A task executor that runs its jobs on a queue of its own and counts them.
    final class CountingExecutor: TaskExecutor {
        let jobs = Mutex(0)
        private let queue = DispatchQueue(label: "counting executor")

        func enqueue(_ job: consuming ExecutorJob) {
            jobs.withLock { $0 += 1 }
            let job = UnownedJob(job), executor = asUnownedTaskExecutor()
            queue.async { job.runSynchronously(on: executor) }
        }
    }

    /// The work a request starts runs where the request runs (its connection's event loop), not on
    /// a thread of Swift's pool that must be woken and then hand the result back.
    @Test func workRunsOnTheRequestsExecutor() async {
        let executor = CountingExecutor()
        let ranThere = await RequestExecutor.$preferred.withValue(executor) {
            await uncancelled { executor.jobs.withLock { $0 } > 0 }
        }
        #expect(ranThere)
    }
}
