import Dispatch

/// A serial queue that owns a share of the connections, like an event loop: every mutable field of
/// those connections is touched only on it, so they need no locks.
final class EventLoop: @unchecked Sendable {
    // Safety: `readBuffer`, `connections` and `ticker` are used only on `queue`.
    let queue: DispatchQueue
    /// One read buffer for all connections of this loop: they take turns on the queue, and each copies
    /// out what it keeps, so idle connections hold no buffer.
    let readBuffer: UnsafeMutableRawBufferPointer
    private var connections: [ObjectIdentifier: Connection] = [:]
    private var ticker: (any DispatchSourceTimer)?
    private static let key = DispatchSpecificKey<ObjectIdentifier>()

    init(index: Int, readBufferSize: Int = 64 * 1024) {
        queue = DispatchQueue(label: "sdgate.http.loop-\(index)")
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        queue.setSpecific(key: Self.key, value: ObjectIdentifier(self))
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Whether the caller runs on this loop's queue.
    var isCurrent: Bool { DispatchQueue.getSpecific(key: Self.key) == ObjectIdentifier(self) }

    /// Runs `body` on the queue: at once if already there, else later.
    func execute(_ body: @escaping @Sendable () -> Void) {
        if isCurrent { body() } else { queue.async(execute: body) }
    }

    func register(_ connection: Connection) {
        connections[ObjectIdentifier(connection)] = connection
    }

    func unregister(_ connection: Connection) {
        connections[ObjectIdentifier(connection)] = nil
    }

    var openConnections: Dictionary<ObjectIdentifier, Connection>.Values { connections.values }

    /// Checks every connection's deadline each `interval` (coarse timers: one source per loop, not per connection).
    func startTicking(every interval: Duration) {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let nanoseconds = Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000)
        timer.schedule(deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(nanoseconds), leeway: .milliseconds(10))
        timer.setEventHandler { [unowned self] in
            let now = ContinuousClock.now
            for connection in connections.values { connection.checkDeadline(at: now) }
        }
        timer.activate()
        ticker = timer
    }

    func stopTicking() {
        ticker?.cancel()
        ticker = nil
    }
}
