package import HTTPServer
import Synchronization

/// A peer that answers every request with its head at once, then sends its body one byte at a
/// time, a byte every `interval`: a client's deadline must cover the body as well as the head
/// (AsyncHTTPClient's own ends when the head arrives).
package final class DrippingPeer: HTTPResponder, Sendable {
    private let body: [UInt8]
    private let interval: Duration
    private let sentAtOnce: Int
    private let sent = Mutex(0)
    private let server = Mutex<(server: HTTPServer?, port: Int)>((nil, 0))

    /// `body` is sent with its `Content-Length`: its first `sentAtOnce` bytes at once, then the
    /// others in as many intervals as they are.
    package init(body: [UInt8], interval: Duration = .milliseconds(200), sentAtOnce: Int = 0) throws {
        self.body = body
        self.interval = interval
        self.sentAtOnce = min(max(sentAtOnce, 0), body.count)
        var configuration = HTTPServer.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        let server = try HTTPServer(configuration: configuration, responder: self)
        let port = try server.start().port
        self.server.withLock { $0 = (server, port) }
    }

    package var baseURL: String { "http://127.0.0.1:\(server.withLock { $0.port })" }

    /// Whether a body has been sent to its last byte.
    package var hasSentABodyWhole: Bool { sent.withLock { $0 } >= body.count }

    package func respond(to request: HTTPRequest) async -> HTTPResponse {
        HTTPResponse(
            status: .ok, headers: ["Content-Type": "application/octet-stream"],
            body: .stream(length: body.count) { writer in
                self.sent.withLock { $0 += self.sentAtOnce }
                try await writer.write(Array(self.body.prefix(self.sentAtOnce)))
                for byte in self.body.dropFirst(self.sentAtOnce) {
                    try await Task.sleep(for: self.interval)
                    // Counted before it goes, so a client that has read it all never sees fewer.
                    self.sent.withLock { $0 += 1 }
                    try await writer.write([byte])
                }
            })
    }

    package func shutdown() async {
        await server.withLock { $0.server }?.shutdown(gracePeriod: .milliseconds(100))
    }
}
