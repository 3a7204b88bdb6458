import CSystemShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call, named, with its `errno`.
///
/// This file is the only place in the server that reads `errno`: every wrapper retries `EINTR`,
/// reports `EAGAIN`/`EWOULDBLOCK` as "would block" rather than as an error, and throws this for the rest.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32

    public var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking I/O call.
enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

enum Syscall {
    /// Runs `body` until it stops failing with `EINTR`; maps `EAGAIN` to `.wouldBlock`.
    @inline(__always)
    private static func retrying<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> IOResult<T> {
        while true {
            let result = body()
            if result >= 0 { return .done(result) }
            let code = Glibc.errno
            switch code {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw SystemError(call: call, errno: code)
            }
        }
    }

    @inline(__always)
    private static func checked<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = Glibc.errno
            if code == EINTR { continue }
            throw SystemError(call: call, errno: code)
        }
    }

    static func socket(domain: Int32, type: Int32) throws(SystemError) -> Int32 {
        try checked("socket") { Glibc.socket(domain, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    static func setOption(_ fd: Int32, level: Int32, name: Int32, value: Int32) throws(SystemError) {
        var value = value
        _ = try checked("setsockopt") { Glibc.setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
    }

    static func bind(_ fd: Int32, _ address: SocketAddress) throws(SystemError) {
        _ = try checked("bind") { address.withSockAddr { Glibc.bind(fd, $0, $1) } }
    }

    static func listen(_ fd: Int32, backlog: Int32) throws(SystemError) {
        _ = try checked("listen") { Glibc.listen(fd, backlog) }
    }

    static func localAddress(_ fd: Int32) throws(SystemError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try checked("getsockname") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.getsockname(fd, $0, &length) }
            }
        }
        return SocketAddress(storage: storage)
    }

    /// Accepts one connection, non-blocking and close-on-exec, with its peer's address.
    static func accept(_ fd: Int32) throws(SystemError) -> IOResult<(Int32, SocketAddress)> {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try retrying("accept4") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    csystem_accept4(fd, $0, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
        }
        switch result {
        case .wouldBlock: return .wouldBlock
        case .done(let client): return .done((client, SocketAddress(storage: storage)))
        }
    }

    /// Reads into `buffer`; `.done(0)` is the peer's end of stream.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try retrying("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// writev(2) as sendmsg(2) with `MSG_NOSIGNAL`: a peer that went away is an `EPIPE` error for
    /// this connection, not a SIGPIPE that kills the process.
    static func send(_ fd: Int32, _ vectors: UnsafeBufferPointer<iovec>) throws(SystemError) -> IOResult<Int> {
        var message = msghdr()
        message.msg_iov = UnsafeMutablePointer(mutating: vectors.baseAddress)
        message.msg_iovlen = vectors.count
        return try retrying("sendmsg") { Glibc.sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
    }

    static func epollCreate() throws(SystemError) -> Int32 {
        try checked("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
    }

    /// Adds, changes or removes the interest of `epoll` in `fd`; the event carries `fd` back.
    static func epollControl(_ epoll: Int32, _ operation: Int32, _ fd: Int32, events: UInt32) throws(SystemError) {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        _ = try checked("epoll_ctl") { epoll_ctl(epoll, operation, fd, &event) }
    }

    /// Waits up to `timeout` milliseconds (-1: without limit) for ready events and takes them.
    /// A signal cutting the wait short counts as no event: the caller computes its timeout anew.
    static func epollWait(_ epoll: Int32, into events: UnsafeMutableBufferPointer<epoll_event>, timeout: Int32) throws(SystemError) -> Int {
        let count = epoll_wait(epoll, events.baseAddress, Int32(events.count), timeout)
        if count >= 0 { return Int(count) }
        let code = Glibc.errno
        if code == EINTR { return 0 }
        throw SystemError(call: "epoll_wait", errno: code)
    }

    static func eventCounter() throws(SystemError) -> Int32 {
        try checked("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
    }

    /// Makes an eventfd readable. Cannot fail short of a counter at its maximum, which a reader
    /// that drains it never lets happen.
    static func signal(eventCounter fd: Int32) {
        var one: UInt64 = 1
        _ = retryingQuietly { Glibc.write(fd, &one, 8) }
    }

    /// Resets an eventfd to unreadable.
    static func drain(eventCounter fd: Int32) {
        var count: UInt64 = 0
        _ = retryingQuietly { Glibc.read(fd, &count, 8) }
    }

    /// Runs `body` until it stops failing with `EINTR`, for calls whose other failures change nothing.
    private static func retryingQuietly(_ body: () -> Int) -> Int {
        while true {
            let result = body()
            if result >= 0 || Glibc.errno != EINTR { return result }
        }
    }

    static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes a descriptor. `EINTR` is not retried: on Linux the descriptor is released regardless.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}
