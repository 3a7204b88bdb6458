/// The head of a request: everything before the body.
public struct HTTPRequestHead: Sendable {
    public var method: HTTPMethod
    /// The request target exactly as sent (origin form: path and query).
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders

    public init(method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = [:]) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    /// The path part of the target, without the query. An absolute-form target
    /// (`http://host/path`, RFC 9112 §3.2.2) is reduced to its path.
    public var path: Substring {
        let utf8 = target.utf8
        var path = target[..<(utf8.firstIndex(of: UInt8(ascii: "?")) ?? target.endIndex)]
        if path.utf8.first != UInt8(ascii: "/"), let scheme = path.firstRange(of: "://") {
            let authorityAndPath = path[scheme.upperBound...]
            path = authorityAndPath.utf8.firstIndex(of: UInt8(ascii: "/")).map { authorityAndPath[$0...] } ?? "/"
        }
        return path
    }

    /// The query part of the target, without the `?`, or nil.
    public var query: Substring? {
        target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[target.utf8.index(after: $0)...] }
    }

    /// Whether the client asked to keep the connection open (RFC 9112 §9.3): HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    public var wantsKeepAlive: Bool {
        if version == .http1_0 { return headers.containsToken("keep-alive", in: "Connection") }
        return !headers.containsToken("close", in: "Connection")
    }

    /// Whether the client waits for `100 Continue` before sending the body (RFC 9110 §10.1.1).
    var expectsContinue: Bool {
        version == .http1_1 && headers["Expect"]?.trimmingOWS().equalsASCIICaseInsensitive("100-continue") == true
    }
}

/// A complete request: its head, its body and its trailer fields.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
    /// Trailer fields of a chunked body (RFC 9112 §7.1.2); empty otherwise.
    public var trailers: HTTPHeaders
    /// The peer's address, where known.
    public var remoteAddress: SocketAddress?
    /// The route a `Router` matched when it admitted the head; `Router.respond` dispatches to it
    /// instead of resolving the path again.
    public var route: Router.Match?
    /// The executor of the event loop that read the request and writes its answer, where its
    /// responder runs. A task the responder starts for the request runs best there too: every move
    /// to another thread is a wake-up (nil outside a server).
    public var loopExecutor: (any TaskExecutor)?

    public init(
        head: HTTPRequestHead, body: [UInt8] = [], trailers: HTTPHeaders = [:], remoteAddress: SocketAddress? = nil,
        route: Router.Match? = nil, loopExecutor: (any TaskExecutor)? = nil
    ) {
        self.head = head
        self.body = body
        self.trailers = trailers
        self.remoteAddress = remoteAddress
        self.route = route
        self.loopExecutor = loopExecutor
    }

    public var method: HTTPMethod { head.method }
    public var path: Substring { head.path }
    public var headers: HTTPHeaders { head.headers }
}
