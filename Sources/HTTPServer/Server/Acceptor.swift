import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Owns the listening socket and accepts connections on its own queue.
final class Acceptor: @unchecked Sendable {
    // Safety: every `var` is used only on `queue`, after `init`.
    let queue = DispatchQueue(label: "sdgate.http.accept")
    let listener: Int32
    let address: SocketAddress
    private var source: (any DispatchSourceRead)?
    private var paused = false
    private var stopped = false
    private var nextLoop = 0
    /// Set while accepting is held back for lack of descriptors, so the shortage is reported once.
    private var short = false

    /// How long accepting pauses when the process is out of descriptors or memory.
    static let resourceBackoff: DispatchTimeInterval = .milliseconds(100)

    init(address requested: SocketAddress, backlog: Int32) throws(SystemError) {
        let fd = try Syscall.socket(domain: requested.family, type: Int32(SOCK_STREAM.rawValue))
        do {
            try Syscall.setOption(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
            try Syscall.bind(fd, requested)
            try Syscall.listen(fd, backlog: backlog)
            address = try Syscall.localAddress(fd)
        } catch {
            Syscall.close(fd)
            throw error
        }
        listener = fd
    }

    func start(_ accept: @escaping @Sendable (Int32, SocketAddress) -> Bool, onError: @escaping @Sendable (SystemError) -> Void) {
        queue.async { [self] in
            let source = DispatchSource.makeReadSource(fileDescriptor: listener, queue: queue)
            source.setEventHandler { [self] in acceptAll(accept, onError: onError) }
            source.setCancelHandler { [listener] in Syscall.close(listener) }
            self.source = source
            source.activate()
        }
    }

    /// Accepts until the backlog is empty (`EAGAIN`) or `accept` refuses more (connection limit).
    private func acceptAll(_ accept: @Sendable (Int32, SocketAddress) -> Bool, onError: @Sendable (SystemError) -> Void) {
        while !stopped && !paused {
            do {
                switch try Syscall.accept(listener) {
                case .wouldBlock:
                    return
                case .done(let (fd, address)):
                    short = false
                    if !accept(fd, address) { pause() }
                }
            } catch {
                switch error.errno {
                case ECONNABORTED, EPROTO:
                    continue  // the peer gave up while queued; nothing to do
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // The listening socket stays readable, so retrying now would spin: wait a moment.
                    if !short { onError(error) }
                    short = true
                    pause()
                    queue.asyncAfter(deadline: .now() + Self.resourceBackoff) { [self] in resume() }
                    return
                default:
                    onError(error)
                    return
                }
            }
        }
    }

    /// Stops taking connections from the backlog (they wait there) until `resume`.
    private func pause() {
        guard !paused, !stopped, let source else { return }
        source.suspend()
        paused = true
    }

    func resume() {
        queue.async { [self] in
            guard paused, !stopped, let source else { return }
            paused = false
            source.resume()
        }
    }

    /// Round-robin over the event loops; used on `queue` only.
    func takeLoopIndex(of count: Int) -> Int {
        defer { nextLoop = (nextLoop + 1) % count }
        return nextLoop
    }

    /// Stops accepting for good and closes the listening socket.
    func stop() {
        queue.sync {
            guard !stopped else { return }
            stopped = true
            if let source {
                if paused { source.resume() }
                source.cancel()
            } else {
                Syscall.close(listener)
            }
        }
    }
}
