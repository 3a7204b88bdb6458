#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemShims
import Dispatch

/// A serial queue that owns a share of the connections, like an event loop: every mutable field of
/// those connections is touched only on it, so they need no locks.
///
/// Its sockets sit in one epoll set, level-triggered, and one Dispatch read source watches that set.
/// A Dispatch source per socket would cost, for every request, a thread wake-up, two `epoll_ctl`
/// re-arms and an `ioctl` inside libdispatch (measured: seven system calls a request instead of
/// three); one source for the set pays that once for a whole batch of ready sockets.
final class EventLoop: @unchecked Sendable {
    // Safety: `readBuffer`, `events`, `connections` and `ticker` are used only on `queue`.
    let queue: DispatchQueue
    /// The loop as the executor its responders' tasks prefer (`Connection.respond`).
    let taskExecutor: LoopTaskExecutor
    /// One read buffer for all connections of this loop: they take turns on the queue, and each copies
    /// out what it keeps, so idle connections hold no buffer.
    let readBuffer: UnsafeMutableRawBufferPointer
    private let epoll: Int32
    private let events: UnsafeMutableBufferPointer<epoll_event>
    private var source: (any DispatchSourceRead)?
    private var connections: [Int32: Connection] = [:]
    private var ticker: (any DispatchSourceTimer)?
    private static let key = DispatchSpecificKey<ObjectIdentifier>()

    init(index: Int, readBufferSize: Int = 64 * 1024, batchSize: Int = 256) throws(SystemError) {
        queue = DispatchQueue(label: "sdgate.http.loop-\(index)")
        taskExecutor = LoopTaskExecutor(queue: queue)
        epoll = try Syscall.epollCreate()
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        events = .allocate(capacity: batchSize)
        queue.setSpecific(key: Self.key, value: ObjectIdentifier(self))
        let source = DispatchSource.makeReadSource(fileDescriptor: epoll, queue: queue)
        source.setEventHandler { [unowned self] in dispatchReadyEvents() }
        source.activate()
        self.source = source
    }

    deinit {
        readBuffer.deallocate()
        events.deallocate()
    }

    /// Whether the caller runs on this loop's queue.
    var isCurrent: Bool { DispatchQueue.getSpecific(key: Self.key) == ObjectIdentifier(self) }

    /// Runs `body` on the queue: at once if already there, else later.
    func execute(_ body: @escaping @Sendable () -> Void) {
        if isCurrent { body() } else { queue.async(execute: body) }
    }

    // MARK: Interest

    func register(_ connection: Connection) throws(SystemError) {
        try Syscall.epollControl(epoll, EPOLL_CTL_ADD, connection.fd, events: Self.mask(reading: true, writing: false))
        connections[connection.fd] = connection
    }

    /// Sets what `connection` is woken for. Level-triggered: data left unread wakes it again.
    func watch(_ connection: Connection, reading: Bool, writing: Bool) {
        // Fails only for a descriptor that is not registered, which `unregister` prevents.
        try? Syscall.epollControl(epoll, EPOLL_CTL_MOD, connection.fd, events: Self.mask(reading: reading, writing: writing))
    }

    /// Removes the descriptor from the set; the caller closes it afterwards.
    func unregister(_ connection: Connection) {
        try? Syscall.epollControl(epoll, EPOLL_CTL_DEL, connection.fd, events: 0)
        connections[connection.fd] = nil
    }

    var openConnections: Dictionary<Int32, Connection>.Values { connections.values }

    private static func mask(reading: Bool, writing: Bool) -> UInt32 {
        // Hang-up and error are always reported; a connection learns of them by reading or writing.
        (reading ? EPOLLIN.rawValue | EPOLLRDHUP.rawValue : 0) | (writing ? EPOLLOUT.rawValue : 0)
    }

    /// Hands every ready socket its event, until none is ready.
    private func dispatchReadyEvents() {
        while true {
            guard let count = try? Syscall.epollPoll(epoll, into: events) else { return }
            for index in 0..<count {
                let event = events[index]
                // The connection may have closed earlier in this batch; its descriptor is then gone.
                guard let connection = connections[event.data.fd] else { continue }
                if event.events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                    connection.readable()
                }
                if event.events & EPOLLOUT.rawValue != 0, connections[event.data.fd] === connection {
                    connection.writable()
                }
            }
            // Answers just sent bring the next requests quickly: poll again until nothing is ready,
            // rather than going back through libdispatch's wake-up for them.
            guard count > 0 else { return }
        }
    }

    // MARK: Deadlines

    /// Checks every connection's deadline each `interval` (coarse timers: one source per loop, not per connection).
    func startTicking(every interval: Duration) {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let nanoseconds = HTTPServer.nanoseconds(interval)
        timer.schedule(deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(nanoseconds), leeway: .milliseconds(10))
        timer.setEventHandler { [unowned self] in
            let now = ContinuousClock.now
            for connection in Array(connections.values) { connection.checkDeadline(at: now) }
        }
        timer.activate()
        ticker = timer
    }

    func stopTicking() {
        ticker?.cancel()
        ticker = nil
    }
}

/// Runs tasks' jobs on a loop's queue. A responder's task prefers it, so that when the task resumes
/// after waiting (for an upstream's answer, say) it comes back to the queue its answer is written
/// from, instead of to a thread of Swift's pool that then hands the answer over: one thread
/// wake-up fewer for every request that waits.
final class LoopTaskExecutor: TaskExecutor {
    private let queue: DispatchQueue

    init(queue: DispatchQueue) {
        self.queue = queue
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job), executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
