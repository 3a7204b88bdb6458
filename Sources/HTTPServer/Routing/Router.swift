/// Routes requests by method and path pattern to `async` handlers.
///
/// Patterns are literal segments and `{name}` captures, one path segment each
/// (`/v1/{slug}`, `/v2/requests/{id}/status`). A path that matches no pattern is answered 404; a path
/// that matches with another method, 405 with `Allow` (RFC 9110 §15.5.6). `HEAD` is served by the
/// `GET` handler, without the body. Both refusals happen at admission, before any body is read.
///
/// Every request gets an id, `x-request-id` on its answer, which the handler sees in place of any a
/// client sent; the `observer` hears of every answer.
public struct Router: HTTPResponder {
    public typealias Handler = @Sendable (HTTPRequest, RouteParameters) async -> HTTPResponse
    /// Looks at a matched request's head before its body is read; an answer refuses it there.
    public typealias HeadCheck = @Sendable (HTTPRequestHead, RouteParameters) -> HTTPResponse?
    /// A head check that may wait for a lookup (a key in a database); the body waits for it.
    public typealias AsyncHeadCheck = @Sendable (HTTPRequestHead, RouteParameters) async -> HTTPResponse?
    /// Words the server's own refusal of a request this route matched (a body too large, too slow
    /// or malformed: the status and the server's reason) in the route's API's error shape.
    public typealias Refusal = @Sendable (HTTPStatus, String) -> HTTPResponse

    /// A class, so that a match carried from a request's head to its dispatch costs one reference.
    public final class Route: Sendable {
        public let method: HTTPMethod
        public let pattern: String
        let segments: [RouteSegment]
        public let maxBodyBytes: Int?
        let checkHead: HeadCheck?
        let verifyHead: AsyncHeadCheck?
        /// nil: the server's plain-text refusal.
        let refusal: Refusal?
        let handler: Handler

        init(
            method: HTTPMethod, pattern: String, maxBodyBytes: Int?, checkHead: HeadCheck?, verifyHead: AsyncHeadCheck?, refusal: Refusal?,
            handler: @escaping Handler
        ) {
            self.method = method
            self.pattern = pattern
            segments = RouteSegment.parse(pattern)
            self.maxBodyBytes = maxBodyBytes
            self.checkHead = checkHead
            self.verifyHead = verifyHead
            self.refusal = refusal
            self.handler = handler
        }
    }

    /// The route a request's head matched and the values of its captures. Admission hands it to
    /// the connection, which gives it back with the complete request (`HTTPRequest.route`), so a
    /// request is resolved once.
    public struct Match: Sendable {
        public let route: Route
        public let parameters: RouteParameters

        /// The pattern matched, for logs and metrics (never the raw path, which can carry ids).
        public var pattern: String { route.pattern }
    }

    public enum Resolution: Sendable {
        case matched(Route, RouteParameters)
        case methodNotAllowed(allowed: [HTTPMethod])
        case notFound
    }

    private var routes: [Route] = []
    /// Builds the 404 and 405 answers; JSON `{"error": ...}` unless replaced.
    public var refusal: @Sendable (HTTPStatus, HTTPRequestHead) -> HTTPResponse = { status, _ in
        .json(status, Array("{\"error\":\"\(status.reason)\"}".utf8))
    }

    /// Told of every answer, for the access log and metrics.
    public var observer: (any RequestObserver)?

    public init() {}

    /// Adds a route. `maxBodyBytes` overrides the server's default body limit for it; `checkHead`
    /// may refuse a request from its head alone (missing credentials), before the body is read;
    /// `verifyHead`, run after it, may look things up first (whether a key exists); `refusal` words
    /// the server's own refusals of the route's requests.
    public mutating func add(
        _ method: HTTPMethod, _ pattern: String, maxBodyBytes: Int? = nil, checkHead: HeadCheck? = nil,
        verifyHead: AsyncHeadCheck? = nil, refusal: Refusal? = nil, _ handler: @escaping Handler
    ) {
        routes.append(
            Route(
                method: method, pattern: pattern, maxBodyBytes: maxBodyBytes, checkHead: checkHead, verifyHead: verifyHead,
                refusal: refusal, handler: handler))
    }

    public mutating func get(_ pattern: String, _ handler: @escaping Handler) {
        add(.get, pattern, handler)
    }

    /// Adds a `GET` route answered from the request's head alone, at admission, on the connection's
    /// own thread: no task is started and no thread handed the request, which for a probe answered
    /// thousands of times a second (`/health`) is most of what it costs. A body sent with it is
    /// read and dropped, as for any answer made from the head.
    public mutating func get(_ pattern: String, fromHead answer: @escaping @Sendable (HTTPRequestHead) -> HTTPResponse) {
        add(.get, pattern, checkHead: { head, _ in answer(head) }) { request, _ in answer(request.head) }
    }

    public mutating func post(
        _ pattern: String, maxBodyBytes: Int? = nil, checkHead: HeadCheck? = nil, verifyHead: AsyncHeadCheck? = nil,
        refusal: Refusal? = nil, _ handler: @escaping Handler
    ) {
        add(.post, pattern, maxBodyBytes: maxBodyBytes, checkHead: checkHead, verifyHead: verifyHead, refusal: refusal, handler)
    }

    public func resolve(_ method: HTTPMethod, path: Substring) -> Resolution {
        var allowed: [HTTPMethod] = []
        for route in routes {
            guard let parameters = RouteSegment.match(route.segments, path) else { continue }
            if route.method == method || (method == .head && route.method == .get) {
                return .matched(route, parameters)
            }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        if allowed.isEmpty { return .notFound }
        if allowed.contains(.get) && !allowed.contains(.head) { allowed.append(.head) }
        return .methodNotAllowed(allowed: allowed)
    }

    public func admit(_ head: HTTPRequestHead) -> HTTPAdmission {
        let (admission, pattern) = match(head)
        // An accepted head is answered, named and timed by `respond`.
        if case .accept = admission { return admission }
        let start = ContinuousClock.now
        return admission.mapRejection { [observer] response in
            var response = response
            let id = RequestID.make()
            response.headers.set("x-request-id", id)
            observer?.answered(head.method, route: pattern ?? "unmatched", status: response.status, duration: .now - start, requestID: id)
            return response
        }
    }

    /// The admission, and the pattern of the route the head matched (nil: none).
    private func match(_ head: HTTPRequestHead) -> (admission: HTTPAdmission, pattern: String?) {
        switch resolve(head.method, path: head.path) {
        case .matched(let route, let parameters):
            if let refusal = route.checkHead?(head, parameters) { return (.reject(refusal), route.pattern) }
            let match = Match(route: route, parameters: parameters)
            guard let verify = route.verifyHead else { return (.accept(maxBodyBytes: route.maxBodyBytes, route: match), route.pattern) }
            return (
                .pending {
                    if let refusal = await verify(head, parameters) { return .reject(refusal) }
                    return .accept(maxBodyBytes: match.route.maxBodyBytes, route: match)
                }, route.pattern
            )
        case .methodNotAllowed(let allowed):
            var response = refusal(.methodNotAllowed, head)
            response.headers.set("Allow", allowed.map(\.rawValue).joined(separator: ", "))
            return (.reject(response), nil)
        case .notFound:
            return (.reject(refusal(.notFound, head)), nil)
        }
    }

    /// Dispatches to the route admission matched (`request.route`); a request that comes without
    /// one (a caller that skips admission) is resolved here.
    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        let start = ContinuousClock.now
        let id = RequestID.make()
        var request = request
        request.head.headers.set("x-request-id", id)
        let match: Match? =
            if let match = request.route {
                match
            } else if case .matched(let route, let parameters) = resolve(request.method, path: request.path) {
                Match(route: route, parameters: parameters)
            } else {
                nil
            }
        var response =
            if let match {
                await match.route.handler(request, match.parameters)
            } else {
                // Admission already refused a request that matches no route; a caller that skips it gets the same answer.
                refusal(.notFound, request.head)
            }
        response.headers.set("x-request-id", id)
        observer?.answered(request.method, route: match?.pattern ?? "unmatched", status: response.status, duration: .now - start, requestID: id)
        return response
    }
}

/// The values captured by a route's `{name}` segments, percent-decoded.
public struct RouteParameters: Sendable {
    private var values: [(name: String, value: String)] = []

    init() {}

    mutating func append(_ name: String, _ value: String) { values.append((name, value)) }

    public subscript(name: String) -> String? {
        values.first { $0.name == name }?.value
    }
}

enum RouteSegment: Sendable, Equatable {
    case literal(String)
    case capture(String)

    static func parse(_ pattern: String) -> [RouteSegment] {
        pattern.split(separator: "/").map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? .capture(String(part.dropFirst().dropLast())) : .literal(String(part))
        }
    }

    /// Matches the non-empty `/`-separated components of `path` one by one, without collecting them.
    static func match(_ segments: [RouteSegment], _ path: Substring) -> RouteParameters? {
        var parameters = RouteParameters()
        var rest = path.utf8[...]
        var index = 0
        while true {
            while rest.first == UInt8(ascii: "/") { rest = rest.dropFirst() }
            guard !rest.isEmpty else { return index == segments.count ? parameters : nil }
            guard index < segments.count else { return nil }
            let end = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
            let component = Substring(rest[..<end])
            switch segments[index] {
            case .literal(let text):
                guard component == text else { return nil }
            case .capture(let name):
                guard let value = percentDecoded(component) else { return nil }
                parameters.append(name, value)
            }
            rest = rest[end...]
            index += 1
        }
    }

    /// RFC 3986 §2.1; nil for a malformed escape or bytes that are not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        text.contains("%") ? PercentDecoding.decode(text.utf8, plusIsSpace: false) : String(text)
    }
}
