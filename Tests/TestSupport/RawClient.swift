import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A TCP client for tests that need byte-level control: send anything, read exactly what the server
/// answered, see when it closes. Every read has a timeout, so a broken server fails the test instead
/// of hanging it.
///
/// The socket calls block, so they run on the client's own queue: blocking a thread of Swift's
/// cooperative pool (two threads on two cores) would starve the server's own tasks.
package final class RawClient: @unchecked Sendable {
    // Safety: the mutable buffer is touched only on `queue`.
    private let queue = DispatchQueue(label: "raw-client")
    package struct Response: CustomStringConvertible, Sendable {
        package var status: Int
        package var headers: [(String, String)]
        package var body: [UInt8]

        package func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        package var text: String { String(decoding: body, as: UTF8.self) }
        package var closes: Bool { header("Connection")?.lowercased() == "close" }
        package var description: String { "\(status) \(headers) \(text.prefix(200))" }
    }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package let fd: Int32
    private var buffer: [UInt8] = []

    /// `source`: the loopback address to connect from (127.0.0.2 and so on are loopback too on Linux).
    /// `receiveTimeout`: long enough for a server whose tasks wait behind the rest of the suite on a
    /// loaded machine; a read that waits longer fails the test.
    package init(port: Int, from source: String? = nil, receiveTimeout: Duration = .seconds(30)) throws {
        fd = try connectToLoopback(port: port, from: source)
        setReceiveTimeout(receiveTimeout)
    }

    deinit { Glibc.close(fd) }

    package func setReceiveTimeout(_ timeout: Duration) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    package func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    package func send(_ bytes: [UInt8]) async throws {
        try await onQueue { try self.sendNow(bytes) }
    }

    package func readResponse(toHead: Bool = false) async throws -> Response {
        try await onQueue { try self.readResponseNow(toHead: toHead) }
    }

    /// True once the server closed the connection (read returns end of stream); false if bytes arrive instead.
    package func isClosedByServer() async throws -> Bool {
        try await onQueue { try self.isClosedNow() }
    }

    private func onQueue<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    private func sendNow(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    /// Reads more bytes into the buffer; false at end of stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { return false }
        guard n > 0 else { throw Failure(description: "recv: \(String(cString: strerror(errno)))") }
        buffer.append(contentsOf: chunk[..<n])
        return true
    }

    private func readLine() throws -> String {
        while true {
            if let lf = buffer.firstIndex(of: 0x0A) {
                let line = buffer[..<lf]
                buffer.removeFirst(lf + 1)
                return String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
            }
            guard try fill() else { throw Failure(description: "connection closed inside a line") }
        }
    }

    private func read(count: Int) throws -> [UInt8] {
        while buffer.count < count {
            guard try fill() else { throw Failure(description: "connection closed inside a body") }
        }
        let bytes = Array(buffer[..<count])
        buffer.removeFirst(count)
        return bytes
    }

    /// Reads one response; interim 1xx answers are returned like any other.
    private func readResponseNow(toHead: Bool) throws -> Response {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(description: "bad status line: \(statusLine)")
        }
        var headers: [(String, String)] = []
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw Failure(description: "bad header: \(line)") }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = Response(status: status, headers: headers, body: [])
        if toHead || (100..<200).contains(status) || status == 204 || status == 304 { return response }
        if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                let sizeLine = try readLine()
                guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw Failure(description: "bad chunk size \(sizeLine)") }
                if size == 0 {
                    while try !readLine().isEmpty {}
                    break
                }
                response.body += try read(count: size)
                _ = try readLine()
            }
        } else if let length = response.header("Content-Length").flatMap(Int.init) {
            response.body = try read(count: length)
        } else {
            while try fill() {}
            response.body = buffer
            buffer = []
        }
        return response
    }

    private func isClosedNow() throws -> Bool {
        if !buffer.isEmpty { return false }
        do {
            return try !fill()
        } catch {
            // A reset after the server's close also means closed.
            return errno == ECONNRESET
        }
    }

    /// Whether the server has sent something (or closed) that was not read yet; does not wait.
    package func hasInput() -> Bool {
        queue.sync {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return !buffer.isEmpty || poll(&descriptor, 1, 0) > 0
        }
    }

    /// Shuts down the sending side, as a client that is done talking does.
    package func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// Makes the coming close (when the client is released) a reset, as a client that crashes or
    /// is killed leaves: unlike a half-close, it says the client is gone.
    package func resetOnClose() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }

    /// One request, one response.
    package static func exchange(port: Int, _ request: String) async throws -> Response {
        let client = try RawClient(port: port)
        try await client.send(request)
        return try await client.readResponse()
    }
}
