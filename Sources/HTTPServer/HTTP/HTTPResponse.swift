/// A response: status, header fields and a body.
///
/// The server adds `Date`, `Server`, the framing (`Content-Length` or chunked) and `Connection`
/// itself; a handler that sets `Connection: close` makes the server close after this response.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        /// The whole body, in memory.
        case bytes([UInt8])
        /// A body produced while it is sent. With a known `length` it is sent with `Content-Length`,
        /// otherwise chunked (or, to an HTTP/1.0 client, delimited by closing the connection).
        /// `write` suspends while the client is slow to read, so memory stays bounded.
        case stream(length: Int?, @Sendable (any HTTPBodyWriter) async throws -> Void)
    }

    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: Body

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = [:], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = [:], bytes: [UInt8]) {
        self.init(status: status, headers: headers, body: .bytes(bytes))
    }

    /// A plain-text response.
    public static func text(_ status: HTTPStatus, _ text: String, headers: HTTPHeaders = [:]) -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "text/plain; charset=utf-8")
        return HTTPResponse(status: status, headers: headers, bytes: Array(text.utf8))
    }

    /// A JSON response from already-encoded JSON text.
    public static func json(_ status: HTTPStatus, _ json: [UInt8], headers: HTTPHeaders = [:]) -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, bytes: json)
    }
}

/// Sends the parts of a streamed body; each `write` returns once the bytes are queued and the
/// connection's unsent output is below its high-water mark.
public protocol HTTPBodyWriter: Sendable {
    func write(_ bytes: [UInt8]) async throws
}
