import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An HTTP/1.1 server on non-blocking POSIX sockets and epoll.
///
/// Connections are spread over a few event loops (`Configuration.eventLoops`), each a thread of its
/// own; the responder runs as a task started on its connection's loop. Everything the server does not
/// need to know about, from routing to business logic, lives behind `HTTPResponder`.
public final class HTTPServer: Sendable {
    public let configuration: Configuration
    /// Open connections at which the server stops accepting: `Limits.maxConnections`, or fewer
    /// when more would not fit in the process's descriptor limit (`DescriptorLimit`).
    public let maxConnections: Int
    let responder: any HTTPResponder
    let encoder: ResponseEncoder
    /// The certificate and key every connection's TLS session is made with; nil for plain HTTP.
    private let tls: TLSContext?
    private let loops: [EventLoop]
    private let onError: @Sendable (SystemError) -> Void

    private let openConnections = Atomic<Int>(0)
    private let perAddress: ConnectionsPerAddress
    /// Request body bytes being received over all connections (`Limits.maxBodyBytesInFlight`).
    let bodyBudget: BodyBudget
    private let shuttingDown = Atomic<Bool>(false)
    private let lifecycle = Mutex<Lifecycle>(Lifecycle())

    private struct Lifecycle: ~Copyable {
        var acceptor: Acceptor?
        var pausedAtCapacity = false
        var drained: CheckedContinuation<Void, Never>?
    }

    /// - Parameter onError: told about accept failures the server recovers from (out of descriptors);
    ///   the server never logs by itself.
    /// Throws if the event loops' epoll sets cannot be created (the process is out of descriptors),
    /// or a `TLSSetupError` if the configured certificate or key cannot be used.
    public init(configuration: Configuration, responder: any HTTPResponder, onError: @escaping @Sendable (SystemError) -> Void = { _ in }) throws {
        self.configuration = configuration
        self.responder = responder
        self.onError = onError
        maxConnections = min(configuration.limits.maxConnections, DescriptorLimit.current.map(DescriptorLimit.connections(fitting:)) ?? .max)
        perAddress = ConnectionsPerAddress(limit: configuration.limits.maxConnectionsPerAddress)
        bodyBudget = BodyBudget(limit: configuration.limits.maxBodyBytesInFlight)
        encoder = ResponseEncoder(
            serverName: configuration.serverName, strictTransportSecurityMaxAge: configuration.tls?.strictTransportSecurityMaxAge ?? .zero,
            date: HTTPDate())
        tls = try configuration.tls.map { configuration throws(TLSSetupError) in try TLSContext(configuration) }
        var loops: [EventLoop] = []
        do {
            for index in 0..<max(1, configuration.eventLoops) { loops.append(try EventLoop(index: index)) }
        } catch {
            for loop in loops { loop.stop() }
            throw error
        }
        self.loops = loops
    }

    deinit {
        // A server dropped without `shutdown` (never started, say) has no connections left either.
        for loop in loops { loop.stop() }
    }

    /// Binds, listens and starts serving; returns the address actually bound (its port when 0 was asked).
    @discardableResult
    public func start() throws -> SocketAddress {
        guard let address = SocketAddress(host: configuration.host, port: configuration.port) else {
            throw SystemError(call: "bind to \(configuration.host):\(configuration.port)", errno: EINVAL)
        }
        // OpenSSL writes to the socket with write(2), which raises SIGPIPE when the peer has gone;
        // the plain path sends with MSG_NOSIGNAL. A server ignores it: the write's error says enough.
        if tls != nil { signal(SIGPIPE, SIG_IGN) }
        let acceptor = try Acceptor(address: address, backlog: configuration.backlog)
        lifecycle.withLock { $0.acceptor = acceptor }
        for loop in loops { loop.enqueue { loop.startTicking(every: self.configuration.timeouts.tick) } }
        acceptor.start({ [self] fd, peer in accepted(fd, peer, by: acceptor) }, onError: onError)
        return acceptor.address
    }

    /// The bound address, once started.
    public var localAddress: SocketAddress? { lifecycle.withLock { $0.acceptor?.address } }

    public var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }

    public var connectionCount: Int { openConnections.load(ordering: .relaxed) }

    /// Runs on the acceptor's queue; returns false when the connection limit is reached.
    private func accepted(_ fd: Int32, _ peer: SocketAddress, by acceptor: Acceptor) -> Bool {
        guard perAddress.open(peer) else {
            ConnectionsPerAddress.refuse(fd)
            return true
        }
        try? Syscall.setOption(fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
        let count = openConnections.add(1, ordering: .relaxed).newValue
        let loop = loops[acceptor.takeLoopIndex(of: loops.count)]
        loop.enqueue { [self] in
            let transport: (any ConnectionTransport)? = if let tls { tls.session(on: fd) } else { PlainTransport(fd: fd) }
            guard let transport else {
                Syscall.close(fd)
                connectionClosed(from: peer)
                return
            }
            Connection(fd: fd, transport: transport, loop: loop, server: self, remoteAddress: peer).start()
        }
        guard count < maxConnections else {
            lifecycle.withLock { $0.pausedAtCapacity = true }
            // A connection may have closed between the count and the flag: look once more.
            if openConnections.load(ordering: .relaxed) < maxConnections { resumeAccepting() }
            return false
        }
        return true
    }

    func connectionClosed(from peer: SocketAddress) {
        perAddress.close(peer)
        let remaining = openConnections.subtract(1, ordering: .relaxed).newValue
        if remaining < maxConnections { resumeAccepting() }
        guard remaining == 0, isShuttingDown else { return }
        lifecycle.withLock { $0.drained.take() }?.resume()
    }

    private func resumeAccepting() {
        let acceptor: Acceptor? = lifecycle.withLock { state in
            guard state.pausedAtCapacity else { return nil }
            state.pausedAtCapacity = false
            return state.acceptor
        }
        acceptor?.resume()
    }

    /// Stops accepting, closes idle connections, lets requests in flight finish for up to
    /// `gracePeriod`, then closes whatever is left. Returns when every connection is closed.
    public func shutdown(gracePeriod: Duration = .seconds(10)) async {
        guard !shuttingDown.exchange(true, ordering: .relaxed) else { return }
        let acceptor = lifecycle.withLock { $0.acceptor }
        acceptor?.stop()
        for loop in loops {
            loop.enqueue { for connection in Array(loop.openConnections) { connection.beginShutdown() } }
        }
        let loops = loops
        let forceClose = DispatchWorkItem {
            for loop in loops {
                loop.enqueue { for connection in Array(loop.openConnections) { connection.close() } }
            }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Self.nanoseconds(gracePeriod)), execute: forceClose)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let alreadyDrained = lifecycle.withLock { state in
                if openConnections.load(ordering: .relaxed) == 0 { return true }
                state.drained = continuation
                return false
            }
            if alreadyDrained { continuation.resume() }
        }
        forceClose.cancel()
        // Every connection is closed: the loops' threads can end.
        for loop in loops { loop.stop() }
    }

    static func nanoseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1_000_000_000 + Int(duration.components.attoseconds / 1_000_000_000)
    }
}
