import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The jobs posted to an event loop, and the eventfd that wakes its thread for them.
///
/// A job posted from another thread writes the eventfd only if no wake-up is pending already, so
/// a burst of posts costs one write and one wake-up. A job posted by the loop's own thread writes
/// nothing: the thread runs every posted job before it waits again.
///
/// Once the loop has stopped, jobs run on a serial Dispatch queue instead, one at a time as on the
/// loop: a responder that finishes after its server shut down still gets its last job run.
final class LoopMailbox: Sendable {
    typealias Job = @Sendable () -> Void

    private struct State: ~Copyable {
        var jobs: [Job] = []
        var wakeUpPending = false
        var stopRequested = false
        var stopped = false
    }

    /// Readable while a wake-up is pending; watched by the loop's epoll set.
    let eventCounter: Int32
    private let state = Mutex(State())
    private let afterStop: DispatchQueue
    /// Marks the thread that runs this mailbox's jobs, for `isCurrent`.
    private static let runner: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "out of thread-specific keys")
        return key
    }()

    init(label: String) throws(SystemError) {
        eventCounter = try Syscall.eventCounter()
        afterStop = DispatchQueue(label: label)
    }

    deinit {
        Syscall.close(eventCounter)
    }

    /// Whether the caller runs this mailbox's jobs: the loop's thread, or the queue after it stopped.
    var isCurrent: Bool {
        pthread_getspecific(Self.runner) == Unmanaged.passUnretained(self).toOpaque()
    }

    /// Marks the calling thread as the one that runs the jobs.
    func adoptCurrentThread() {
        pthread_setspecific(Self.runner, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Runs `job` on the loop, after the caller's current work: never inline.
    func post(_ job: @escaping Job) {
        let onLoop = isCurrent
        enum Next { case nothing, wakeUp, runAfterStop }
        let next: Next = state.withLock { state in
            if state.stopped { return .runAfterStop }
            state.jobs.append(job)
            if onLoop || state.wakeUpPending { return .nothing }
            state.wakeUpPending = true
            return .wakeUp
        }
        switch next {
        case .nothing: break
        case .wakeUp: Syscall.signal(eventCounter: eventCounter)
        case .runAfterStop:
            afterStop.async { [self] in
                adoptCurrentThread()
                job()
                pthread_setspecific(Self.runner, nil)
            }
        }
    }

    /// Called by the loop when the eventfd is readable.
    func acknowledgeWakeUp() {
        Syscall.drain(eventCounter: eventCounter)
    }

    /// Runs the posted jobs, and those they post, until none is left. Returns false once a stop was
    /// asked and nothing is left to run: the loop's thread then ends, and later jobs go to the queue.
    func runPending() -> Bool {
        while true {
            let taken: [Job]? = state.withLock { state in
                // Cleared before the jobs run: a post from now on wakes the loop again.
                state.wakeUpPending = false
                if state.jobs.isEmpty {
                    if state.stopRequested { state.stopped = true }
                    return state.stopped ? nil : []
                }
                var taken: [Job] = []
                swap(&taken, &state.jobs)
                return taken
            }
            guard let taken else { return false }
            if taken.isEmpty { return true }
            for job in taken { job() }
        }
    }

    /// Asks the loop's thread to end once it has run what was posted before.
    func requestStop() {
        let wakeUp = state.withLock { state in
            state.stopRequested = true
            defer { state.wakeUpPending = true }
            return !state.wakeUpPending
        }
        if wakeUp { Syscall.signal(eventCounter: eventCounter) }
    }
}

/// Runs tasks' jobs on an event loop. A responder's task prefers it, so that when the task resumes
/// after waiting (for an upstream's answer, say) it comes back to the loop its answer is written
/// from, instead of to a thread of Swift's pool that then hands the answer over: one thread
/// wake-up fewer for every request that waits.
final class LoopTaskExecutor: TaskExecutor {
    private let mailbox: LoopMailbox

    init(mailbox: LoopMailbox) {
        self.mailbox = mailbox
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job), executor = asUnownedTaskExecutor()
        mailbox.post { job.runSynchronously(on: executor) }
    }
}
