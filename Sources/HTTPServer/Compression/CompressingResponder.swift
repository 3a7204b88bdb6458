/// Sends answers gzip-compressed to clients that accept it, when that pays: text and JSON bodies
/// of at least `minimumBytes`, never images or other already-compressed formats, never a body
/// that already has a `Content-Encoding`. Such answers carry `Vary: Accept-Encoding` whether
/// compressed or not, so that a cache keeps the two forms apart (RFC 9110 §12.5.5).
///
/// It wraps the application's responder. Compression runs off the event loop (a responder's task
/// prefers its loop's executor, `Connection.respond`), so a large body does not hold up the loop's
/// other connections; an answer that is not compressed does not leave the loop.
public struct CompressingResponder: HTTPResponder {
    public struct Settings: Sendable {
        /// Smaller bodies are sent as they are: below about a kilobyte, gzip saves less than a packet.
        public var minimumBytes = 1024
        /// zlib's level, 1 (fastest) to 9 (smallest); 6 is zlib's own default.
        public var level = 6

        public init() {}
    }

    let inner: any HTTPResponder
    let settings: Settings

    public init(_ inner: any HTTPResponder, settings: Settings = Settings()) {
        self.inner = inner
        self.settings = settings
    }

    public func admit(_ head: HTTPRequestHead) -> HTTPAdmission {
        inner.admit(head)
    }

    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        var response = await inner.respond(to: request)
        guard case .bytes(let body) = response.body, body.count >= settings.minimumBytes, !response.status.forbidsBody,
            !response.headers.contains("Content-Encoding"), Self.isCompressible(response.headers["Content-Type"])
        else { return response }
        if !response.headers.containsToken("Accept-Encoding", in: "Vary") && !response.headers.containsToken("*", in: "Vary") {
            response.headers.add("Vary", "Accept-Encoding")
        }
        guard AcceptEncoding(request.headers.values("Accept-Encoding")).prefersGzip else { return response }
        let level = settings.level
        return await withTaskExecutorPreference(globalConcurrentExecutor) {
            guard let gzip = Gzip.compress(body, level: level), gzip.count < body.count else { return response }
            var compressed = response
            compressed.headers.set("Content-Encoding", "gzip")
            compressed.body = .bytes(gzip)
            return compressed
        }
    }

    /// Text of any kind, JSON, JavaScript and XML (SVG included); not images, archives or media,
    /// which are compressed already.
    static func isCompressible(_ contentType: String?) -> Bool {
        guard let type = contentType?.split(separator: ";").first?.trimmingOWS().lowercased() else { return false }
        return type.hasPrefix("text/") || type.hasSuffix("+json") || type.hasSuffix("+xml")
            || ["application/json", "application/javascript", "application/xml"].contains(type)
    }
}
