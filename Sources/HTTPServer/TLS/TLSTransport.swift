import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A TLS session on a non-blocking socket. OpenSSL reads and writes the socket itself and says
/// what it waits for (`SSL_ERROR_WANT_READ`/`WANT_WRITE`), which maps onto the event loop's
/// readiness like a socket's would-block.
///
/// Any failure (a bad handshake, a broken record, the peer gone) ends the connection: what went
/// wrong is OpenSSL's to know, so the error names only the call.
final class TLSTransport: ConnectionTransport {
    // Not shared: created and used on its connection's event loop only.
    private let ssl: OpaquePointer
    private let fd: Int32

    /// Small pieces (a head and its body) are gathered into one record of at most this size.
    static let recordSize = 16 * 1024

    init(ssl: OpaquePointer, fd: Int32) {
        self.ssl = ssl
        self.fd = fd
    }

    func handshake() throws(SystemError) -> HandshakeStep {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        guard result != 1 else { return .done }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wantsRead
        case SSL_ERROR_WANT_WRITE: return .wantsWrite
        default: throw SystemError(call: "SSL_do_handshake", errno: EPROTO)
        }
    }

    /// One record's bytes at most: the records still in the socket keep it readable.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        ERR_clear_error()
        readWaitsForRoomToSend = false
        let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        if count > 0 { return .done(Int(count)) }
        switch SSL_get_error(ssl, count) {
        case SSL_ERROR_WANT_READ: return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            readWaitsForRoomToSend = true
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN: return .done(0)
        default: throw SystemError(call: "SSL_read", errno: EPROTO)
        }
    }

    private(set) var readWaitsForRoomToSend = false

    /// The rest of a record that `read` had no room for: the socket no longer shows it.
    var hasBufferedInput: Bool { SSL_pending(ssl) > 0 }

    func send(_ vectors: UnsafeBufferPointer<iovec>) throws(SystemError) -> IOResult<Int> {
        guard let first = vectors.first else { return .done(0) }
        if vectors.count == 1 || first.iov_len >= Self.recordSize { return try write(first.iov_base, count: first.iov_len) }
        // The same queue gathers the same bytes again when a write has to be retried, as OpenSSL
        // requires (the buffer may move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
        return try withUnsafeTemporaryAllocation(byteCount: Self.recordSize, alignment: 1) { record throws(SystemError) in
            var filled = 0
            for vector in vectors where filled < Self.recordSize {
                let count = min(vector.iov_len, Self.recordSize - filled)
                (record.baseAddress! + filled).copyMemory(from: vector.iov_base!, byteCount: count)
                filled += count
            }
            return try write(record.baseAddress, count: filled)
        }
    }

    private func write(_ bytes: UnsafeRawPointer?, count: Int) throws(SystemError) -> IOResult<Int> {
        ERR_clear_error()
        let written = SSL_write(ssl, bytes, Int32(clamping: count))
        if written > 0 { return .done(Int(written)) }
        switch SSL_get_error(ssl, written) {
        case SSL_ERROR_WANT_WRITE, SSL_ERROR_WANT_READ: return .wouldBlock
        default: throw SystemError(call: "SSL_write", errno: EPIPE)
        }
    }

    /// Sends close_notify if the socket takes it now (a peer that misses it still sees the end of
    /// the answer by its framing), then ends the sending side.
    func shutdownWrite() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        Syscall.shutdownWrite(fd)
    }

    func close() {
        SSL_free(ssl)
        Syscall.close(fd)
    }
}
