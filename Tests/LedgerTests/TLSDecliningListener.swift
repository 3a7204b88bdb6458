import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener on 127.0.0.1 that answers PostgreSQL's SSLRequest with `N` ("no TLS here"), as a
/// server without TLS does, or a man in the middle who wants the session in clear, and keeps what
/// each client sent after that answer.
final class TLSDecliningListener: Sendable {
    let port: Int
    private let fd: Int32
    private let seen = Mutex(Seen())

    struct Seen {
        /// Connections that were told `N` and then closed by the client or sent something.
        var declined = 0
        /// What the clients sent after `N`: a client that goes on in plaintext sends its startup message.
        var sentInPlaintext: [UInt8] = []
    }

    /// The 8 bytes of an SSLRequest: its length, then the code 80877103.
    static let sslRequest: [UInt8] = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F]

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard listening else {
            close(fd)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    var snapshot: Seen { seen.withLock { $0 } }

    /// Stops accepting; `accept` returns once the socket is shut down.
    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
    }

    deinit {
        close(fd)
    }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }
            Thread.detachNewThread { [self] in serve(client) }
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        // A generous bound on a silent client, so that no thread waits for ever.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard receive(client, count: Self.sslRequest.count) == Self.sslRequest else { return }
        guard send(client, "N", 1, Int32(MSG_NOSIGNAL)) == 1 else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let received = recv(client, &buffer, buffer.count, 0)
        seen.withLock {
            $0.declined += 1
            if received > 0 { $0.sentInPlaintext += buffer.prefix(received) }
        }
    }

    private func receive(_ client: Int32, count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: count)
        while bytes.count < count {
            let received = recv(client, &buffer, count - bytes.count, 0)
            guard received > 0 else { return bytes }
            bytes += buffer.prefix(received)
        }
        return bytes
    }
}
