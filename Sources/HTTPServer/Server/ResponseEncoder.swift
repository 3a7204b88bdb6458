/// How a response body is delimited on the wire (RFC 9112 §6).
enum ResponseFraming: Equatable {
    case length(Int)
    case chunked
    /// HTTP/1.0 client and unknown length: the body ends when the connection closes.
    case untilClose
}

/// Writes response heads. The server owns framing and connection management fields, so those that a
/// handler set are replaced.
struct ResponseEncoder: Sendable {
    /// `Server`, and `Strict-Transport-Security` where configured: the same on every answer.
    private let fixedFields: [UInt8]
    let date: HTTPDate

    init(serverName: String, strictTransportSecurityMaxAge: Duration = .zero, date: HTTPDate) {
        var fields = "Server: \(serverName)\r\n"
        if strictTransportSecurityMaxAge > .zero {
            fields += "Strict-Transport-Security: max-age=\(strictTransportSecurityMaxAge.components.seconds)\r\n"
        }
        fixedFields = Array(fields.utf8)
        self.date = date
    }

    private static let ownedFields = [
        "Content-Length", "Transfer-Encoding", "Connection", "Date", "Server", "Keep-Alive", "Strict-Transport-Security",
    ]

    func head(
        status: HTTPStatus, headers: HTTPHeaders, framing: ResponseFraming, keepAlive: Bool, requestVersion: HTTPVersion
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + headers.count * 40)
        out.append(contentsOf: "HTTP/1.1 \(status.code) \(status.reason)\r\n".utf8)
        for field in headers where !Self.ownedFields.contains(where: { field.name.equalsASCIICaseInsensitive($0) }) {
            out.append(contentsOf: field.name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: field.value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "Date: ".utf8)
        out.append(contentsOf: date.current())
        out.append(contentsOf: "\r\n".utf8)
        out.append(contentsOf: fixedFields)
        switch framing {
        case .length(let length):
            // RFC 9110 §8.6: no Content-Length on 1xx and 204.
            if !((100..<200).contains(status.code) || status.code == 204) {
                out.append(contentsOf: "Content-Length: \(length)\r\n".utf8)
            }
        case .chunked:
            out.append(contentsOf: "Transfer-Encoding: chunked\r\n".utf8)
        case .untilClose:
            break
        }
        if !keepAlive {
            out.append(contentsOf: "Connection: close\r\n".utf8)
        } else if requestVersion == .http1_0 {
            out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        return out
    }

    /// A short plain-text error answer that closes the connection.
    func errorResponse(_ status: HTTPStatus, _ message: String, retryAfterSeconds: Int? = nil) -> (head: [UInt8], body: [UInt8]) {
        let body = Array("\(message)\n".utf8)
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/plain; charset=utf-8")
        if let retryAfterSeconds { headers.add("Retry-After", String(retryAfterSeconds)) }
        return (head(status: status, headers: headers, framing: .length(body.count), keepAlive: false, requestVersion: .http1_1), body)
    }

    static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    static func chunkHeader(_ size: Int) -> [UInt8] {
        Array((String(size, radix: 16) + "\r\n").utf8)
    }

    static let crlf: [UInt8] = [0x0D, 0x0A]
    static let lastChunk = Array("0\r\n\r\n".utf8)
}
