/// The workers and the requests waiting for them, as the local backend's lock guards them: which
/// workers are up and idle, and the fair queue of waiters.
struct WorkerPool {
    /// A place on a worker as the pool hands it out: which worker, which of its lives, which of
    /// the places it has (a batching worker takes several requests at once), where it listens and
    /// the token it wants.
    struct Lease: Sendable, Equatable {
        let worker: Int
        let life: Int
        var place = 0
        let url: String
        let token: String?
    }

    typealias Waiter = CheckedContinuation<Lease, any Error>

    var idle: [Lease] = []
    /// Each worker's current life, and while it is up its URL, (spawned ones) its process id and
    /// the requests it takes at once.
    private var lives: [Int: (life: Int, url: String?, processIdentifier: Int32?, capacity: Int)] = [:]
    var waiting: FairQueue<Waiter>
    private var nextWaiter: UInt64 = 0
    /// When each key last had a request started, as a count of starts: the fair queue serves the
    /// key served least recently first.
    private var lastServed: [String: UInt64] = [:]
    private var starts: UInt64 = 0

    init(waiting: FairQueue<Waiter>) {
        self.waiting = waiting
    }

    var workersUp: Int { lives.values.filter { $0.url != nil }.count }

    /// The requests the workers up take at once, together.
    var places: Int { lives.values.reduce(0) { $0 + ($1.url != nil ? $1.capacity : 0) } }

    func isUp(_ worker: Int) -> Bool { lives[worker]?.url != nil }

    /// The requests a worker up takes at once; nil while it is down.
    func capacity(of worker: Int) -> Int? { lives[worker]?.url != nil ? lives[worker]?.capacity : nil }

    var processIdentifiers: [Int32] { lives.values.compactMap { $0.url != nil ? $0.processIdentifier : nil } }

    mutating func addWorker() -> Int {
        let index = lives.count
        lives[index] = (0, nil, nil, 0)
        return index
    }

    /// How a request for a worker begins: on a free place at once, or numbered to wait.
    enum Admitted {
        case started(Lease)
        case waits(UInt64)
    }

    /// How a numbered request's turn to wait ends.
    enum Joined {
        case started(Lease)
        /// In the queue, with this many waiting.
        case queued(Int)
        /// The queue, or the key's share of it, is full.
        case refused
    }

    /// A free place at once, unless others wait before this request (the queue is fair).
    mutating func admit(_ key: String) -> Admitted {
        if waiting.isEmpty, let lease = idle.popLast() { return .started(start(lease, for: key)) }
        nextWaiter += 1
        return .waits(nextWaiter)
    }

    /// The request numbered by `admit` joins the queue, unless a place went idle since (handed
    /// back while nobody waited): then it starts on it, as nobody would hand that place on.
    mutating func join(_ waiter: Waiter, id: UInt64, key: String) -> Joined {
        if waiting.isEmpty, let lease = idle.popLast() { return .started(start(lease, for: key)) }
        return waiting.enqueue(waiter, id: id, key: key) ? .queued(waiting.count) : .refused
    }

    mutating func start(_ lease: Lease, for key: String) -> Lease {
        starts += 1
        lastServed[key] = starts
        return lease
    }

    /// A worker back from a job, or newly up: the next waiter in turn gets it, or it goes idle.
    /// A lease of an earlier life (the worker died and came back since) is void.
    mutating func handBack(_ lease: Lease) -> (Waiter, Lease)? {
        guard lives[lease.worker]?.life == lease.life, lives[lease.worker]?.url != nil else { return nil }
        if let (key, waiter) = waiting.dequeue(lastServed: lastServed) { return (waiter, start(lease, for: key)) }
        idle.append(lease)
        return nil
    }

    /// The worker starts a new life; its leases, one per request it takes at once, to be handed
    /// out. Each is handed back on its own, so a batching worker's places go out in the fair
    /// queue's turns: when a batch ends, a key that waits gets one of the next batch's places.
    mutating func up(_ worker: Int, _ listening: ListeningWorker, capacity: Int = 1) -> [Lease] {
        let life = (lives[worker]?.life ?? 0) + 1, capacity = max(capacity, 1)
        lives[worker] = (life, listening.url, listening.processIdentifier, capacity)
        // The places of its earlier life are void, idle ones too (handed out, they would overfill it).
        idle.removeAll { $0.worker == worker }
        return (0..<capacity).map { Lease(worker: worker, life: life, place: $0, url: listening.url, token: listening.token) }
    }

    mutating func down(_ worker: Int) {
        lives[worker]?.url = nil
        idle.removeAll { $0.worker == worker }
    }
}
