import Dispatch
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import HTTPServer

/// The event loop's thread and the mailbox other threads post it jobs through.
@Suite("Event loop")
struct EventLoopTests {
    @Test func jobsPostedFromManyThreadsAllRunOnTheLoopInEachPostersOrder() async throws {
        let loop = try EventLoop(index: 0)
        defer { loop.stop() }
        let posters = 8, jobsEach = 2_000
        let seen = Mutex([[Int]](repeating: [], count: posters))
        let offLoop = Atomic<Int>(0)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let remaining = Atomic<Int>(posters * jobsEach)
            DispatchQueue.concurrentPerform(iterations: posters) { poster in
                for number in 0..<jobsEach {
                    loop.enqueue {
                        if !loop.isCurrent { offLoop.add(1, ordering: .relaxed) }
                        seen.withLock { $0[poster].append(number) }
                        if remaining.subtract(1, ordering: .relaxed).newValue == 0 { done.resume() }
                    }
                }
            }
        }
        let ranOffLoop = offLoop.load(ordering: .relaxed)
        #expect(ranOffLoop == 0)
        seen.withLock { seen in
            for numbers in seen { #expect(numbers == Array(0..<jobsEach)) }
        }
    }

    @Test func aJobPostedByTheLoopRunsAfterTheCurrentOneNotInsideIt() async throws {
        let loop = try EventLoop(index: 0)
        defer { loop.stop() }
        let order = Mutex<[String]>([])
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            loop.enqueue {
                loop.enqueue {
                    order.withLock { $0.append("posted") }
                    done.resume()
                }
                loop.execute { order.withLock { $0.append("executed inline") } }
                order.withLock { $0.append("first job ends") }
            }
        }
        #expect(order.withLock { $0 } == ["executed inline", "first job ends", "posted"])
    }

    @Test func aJobPostedAfterTheLoopStoppedStillRunsOneAtATimeAsOnTheLoop() async throws {
        let loop = try EventLoop(index: 0)
        loop.stop()
        let running = Atomic<Int>(0), overlapped = Atomic<Bool>(false), ranAsLoop = Atomic<Int>(0)
        let jobs = 200
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let remaining = Atomic<Int>(jobs)
            DispatchQueue.concurrentPerform(iterations: jobs) { _ in
                loop.enqueue {
                    if running.add(1, ordering: .sequentiallyConsistent).newValue > 1 { overlapped.store(true, ordering: .relaxed) }
                    if loop.isCurrent { ranAsLoop.add(1, ordering: .relaxed) }
                    running.subtract(1, ordering: .sequentiallyConsistent)
                    if remaining.subtract(1, ordering: .relaxed).newValue == 0 { done.resume() }
                }
            }
        }
        let didOverlap = overlapped.load(ordering: .relaxed), asLoop = ranAsLoop.load(ordering: .relaxed)
        #expect(!didOverlap)
        #expect(asLoop == jobs)
    }

    @Test func aTaskPreferringTheLoopResumesOnItAfterWaitingElsewhere() async throws {
        let loop = try EventLoop(index: 0)
        defer { loop.stop() }
        let onLoop = await Task(executorPreference: loop.taskExecutor) {
            let before = loop.isCurrent
            // Waits on a Dispatch thread, as an upstream answer would on SwiftNIO's.
            await withCheckedContinuation { (resumed: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().async { resumed.resume() }
            }
            return [before, loop.isCurrent]
        }.value
        #expect(onLoop == [true, true])
    }

    @Test func stoppingALoopEndsItsThread() async throws {
        // An index no server of the other tests reaches, so the thread's name is this loop's alone.
        let loop = try EventLoop(index: 917)
        #expect(await eventually { Self.threadNames().contains("sdgate-loop-917") })
        loop.stop()
        #expect(await eventually { !Self.threadNames().contains("sdgate-loop-917") })
    }

    /// The names of this process's threads, as the kernel has them.
    private static func threadNames() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap {
            try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}
