#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a connection moves its bytes: straight on the socket, or through a TLS session on it. The
/// connection's logic (parsing, keep-alive, deadlines) is the same for both.
///
/// Every call is non-blocking and made on the connection's event loop; "would block" means "call
/// again when the loop says the socket is ready", and the step of a handshake says for which.
protocol ConnectionTransport {
    /// Moves the handshake on, if the transport has one; `.done` once the connection carries HTTP.
    func handshake() throws(SystemError) -> HandshakeStep
    /// Reads into `buffer`; `.done(0)` is the peer's end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int>
    /// Sends from the start of `vectors`; returns how many bytes were taken.
    func send(_ vectors: UnsafeBufferPointer<iovec>) throws(SystemError) -> IOResult<Int>
    /// Bytes read from the socket and held by the transport, which the socket's readiness no longer shows.
    var hasBufferedInput: Bool { get }
    /// The last read would have blocked because it must first send, into a socket that takes no
    /// more (TLS 1.3 answers a peer's key update so): it can go on once the socket is writable.
    var readWaitsForRoomToSend: Bool { get }
    /// Ends the sending side after the last answer.
    func shutdownWrite()
    /// Releases the transport and closes the socket.
    func close()
}

enum HandshakeStep: Equatable {
    case done
    /// The handshake waits for the peer's bytes, or for room to send its own.
    case wantsRead, wantsWrite
}

/// The socket itself.
struct PlainTransport: ConnectionTransport {
    let fd: Int32

    var readWaitsForRoomToSend: Bool { false }

    func handshake() -> HandshakeStep { .done }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try Syscall.read(fd, into: buffer)
    }

    func send(_ vectors: UnsafeBufferPointer<iovec>) throws(SystemError) -> IOResult<Int> {
        try Syscall.send(fd, vectors)
    }

    var hasBufferedInput: Bool { false }

    func shutdownWrite() {
        Syscall.shutdownWrite(fd)
    }

    func close() {
        Syscall.close(fd)
    }
}
