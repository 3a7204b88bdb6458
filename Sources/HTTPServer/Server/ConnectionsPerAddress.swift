import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Open connections by client address (`Limits.maxConnectionsPerAddress`), so that one client
/// cannot take every slot of `maxConnections` and leave the others waiting in the backlog. An IPv6
/// client is its /64 (`SocketAddress.clientGroup`).
final class ConnectionsPerAddress: Sendable {
    private let limit: Int
    private let counts = Mutex<[String: Int]>([:])

    /// `limit` 0: no limit, and nothing is counted.
    init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Counts a new connection from `peer`; false (and not counted) if that address is at its limit.
    func open(_ peer: SocketAddress) -> Bool {
        guard limit > 0 else { return true }
        let host = peer.clientGroup
        return counts.withLock { counts in
            let open = counts[host, default: 0]
            guard open < limit else { return false }
            counts[host] = open + 1
            return true
        }
    }

    func close(_ peer: SocketAddress) {
        guard limit > 0 else { return }
        let host = peer.clientGroup
        counts.withLock { counts in
            guard let open = counts[host] else { return }
            counts[host] = open > 1 ? open - 1 : nil
        }
    }

    private static let refusal = Array(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 46\r\n\r\ntoo many connections from this address; retry\n"
            .utf8)

    /// Answers a connection over the limit with 503 (if its socket takes the bytes at once; it is
    /// new, so it does) and closes it, without reading anything from it.
    static func refuse(_ fd: Int32) {
        _ = refusal.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        Syscall.close(fd)
    }
}
