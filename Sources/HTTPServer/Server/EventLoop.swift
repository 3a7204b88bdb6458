import CSystemShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A thread that owns a share of the connections: every mutable field of those connections is
/// touched only on it, so they need no locks.
///
/// The thread waits in `epoll_wait` itself, on its sockets (level-triggered) and on its mailbox's
/// eventfd, through which other threads post it jobs. A Dispatch queue with a read source on the
/// epoll set costs two thread wake-ups for every event instead: libdispatch's manager thread is
/// woken by epoll, then wakes a worker thread for the queue.
final class EventLoop: @unchecked Sendable {
    // Safety: `readBuffer`, `events`, `connections` and the tick fields are used only on the
    // loop's thread (or, once it stopped, on its mailbox's queue).
    /// The loop as the executor its responders' tasks prefer (`Connection.respond`).
    let taskExecutor: LoopTaskExecutor
    /// One read buffer for all connections of this loop: they take turns on the thread, and each
    /// copies out what it keeps, so idle connections hold no buffer.
    let readBuffer: UnsafeMutableRawBufferPointer
    private let mailbox: LoopMailbox
    private let epoll: Int32
    private let events: UnsafeMutableBufferPointer<epoll_event>
    private var connections: [Int32: Connection] = [:]
    private var tickInterval: Duration?
    private var nextTick = ContinuousClock.now

    init(index: Int, readBufferSize: Int = 64 * 1024, batchSize: Int = 256) throws(SystemError) {
        mailbox = try LoopMailbox(label: "sdgate.http.loop-\(index)")
        taskExecutor = LoopTaskExecutor(mailbox: mailbox)
        epoll = try Syscall.epollCreate()
        do {
            try Syscall.epollControl(epoll, EPOLL_CTL_ADD, mailbox.eventCounter, events: EPOLLIN.rawValue)
        } catch {
            Syscall.close(epoll)
            throw error
        }
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        events = .allocate(capacity: batchSize)
        try LoopThread.start(name: "sdgate-loop-\(index)") { [self] in run() }
    }

    deinit {
        Syscall.close(epoll)
        readBuffer.deallocate()
        events.deallocate()
    }

    /// Whether the caller runs on this loop.
    var isCurrent: Bool { mailbox.isCurrent }

    /// Runs `body` on the loop: at once if already there, else later.
    func execute(_ body: @escaping @Sendable () -> Void) {
        if isCurrent { body() } else { mailbox.post(body) }
    }

    /// Runs `body` on the loop after what it is doing now, even when called from the loop.
    func enqueue(_ body: @escaping @Sendable () -> Void) {
        mailbox.post(body)
    }

    /// Ends the loop's thread once it has run the jobs posted so far. Its connections must be closed.
    func stop() {
        mailbox.requestStop()
    }

    // MARK: The thread

    private func run() {
        mailbox.adoptCurrentThread()
        repeat {
            let count: Int
            do {
                count = try Syscall.epollWait(epoll, into: events, timeout: millisecondsToNextTick())
            } catch {
                // Only a broken epoll descriptor fails here, which `deinit` alone closes.
                preconditionFailure("\(error)")
            }
            dispatch(count)
            tickIfDue()
        } while mailbox.runPending()
    }

    /// Hands each of `count` ready events to its connection.
    private func dispatch(_ count: Int) {
        for index in 0..<count {
            let event = events[index]
            if event.data.fd == mailbox.eventCounter {
                mailbox.acknowledgeWakeUp()
                continue
            }
            // The connection may have closed earlier in this batch; its descriptor is then gone.
            guard let connection = connections[event.data.fd] else { continue }
            if event.events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                connection.readable()
            }
            if event.events & EPOLLOUT.rawValue != 0, connections[event.data.fd] === connection {
                connection.writable()
            }
        }
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

    // MARK: Deadlines

    /// Checks every connection's deadline each `interval`: coarse timers, one per loop rather
    /// than one per connection, kept by the wait's timeout.
    func startTicking(every interval: Duration) {
        tickInterval = interval
        nextTick = .now + interval
    }

    private func millisecondsToNextTick() -> Int32 {
        guard tickInterval != nil else { return -1 }
        let left = ContinuousClock.now.duration(to: nextTick)
        guard left > .zero else { return 0 }
        // Rounded up: waking a little early would only find nothing due and wait again.
        return Int32(clamping: (HTTPServer.nanoseconds(left) + 999_999) / 1_000_000)
    }

    private func tickIfDue() {
        guard let tickInterval else { return }
        let now = ContinuousClock.now
        guard now >= nextTick else { return }
        nextTick = now + tickInterval
        for connection in Array(connections.values) { connection.checkDeadline(at: now) }
    }
}

/// A detached POSIX thread: an event loop's thread is its own, never one of a pool's.
private enum LoopThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    static func start(name: String, _ run: @escaping @Sendable () -> Void) throws(SystemError) {
        let body = Unmanaged.passRetained(
            Body {
                csystem_name_thread(name)
                run()
            }
        ).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { context in
                let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
                body.run()
                return nil
            }, body)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(body).release()
            throw SystemError(call: "pthread_create", errno: result)
        }
        pthread_detach(thread)
    }
}
