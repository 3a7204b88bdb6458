#if canImport(Glibc)
import Glibc
#endif

package struct LoopbackConnectError: Error, CustomStringConvertible {
    package let description: String
}

/// A blocking TCP socket connected to 127.0.0.1:`port`, from the loopback address `source` if
/// given (any 127.x.y.z is loopback on Linux: tests use them as distinct clients); the caller closes it.
package func connectToLoopback(port: Int, from source: String? = nil) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw LoopbackConnectError(description: "socket: \(String(cString: strerror(errno)))") }
    if let source {
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw LoopbackConnectError(description: "bind \(source): \(String(cString: strerror(code)))")
        }
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        let code = errno
        close(fd)
        throw LoopbackConnectError(description: "connect: \(String(cString: strerror(code)))")
    }
    return fd
}

/// A port on 127.0.0.1 that nothing listens on now, for a server that must be told its port before
/// it can say which one it took (one whose output a test cannot read).
package func unusedLoopbackPort() throws -> Int {
    try RefusingLoopbackPort().port
}

/// A port on 127.0.0.1 that refuses connections for as long as this value lives: its socket is
/// bound but never listens, so no server started meanwhile (by a test running beside) can take the
/// port, as one may take the port of a server that was shut down.
package final class RefusingLoopbackPort: Sendable {
    package let port: Int
    private let fd: Int32

    package init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LoopbackConnectError(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            let code = errno
            close(fd)
            throw LoopbackConnectError(description: "bind: \(String(cString: strerror(code)))")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    package var baseURL: String { "http://127.0.0.1:\(port)" }

    deinit {
        close(fd)
    }
}
