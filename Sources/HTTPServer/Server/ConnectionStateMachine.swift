/// The decisions of one HTTP/1.1 connection, without its socket: whether a request's body is read,
/// dropped or refused, when the responder is asked, whether the connection stays open after an
/// answer, and how it ends.
///
/// Pure, like the parser and `ConnectionDeadline`: `Connection` reports what happened (a head was
/// parsed, a body ended, an answer was written, the peer half-closed, a deadline passed) and
/// performs the `Action` it gets back on the socket, so tests drive every decision without one.
/// The I/O state (parser, buffers, output queue, tasks, epoll interest) stays in `Connection`.
struct ConnectionStateMachine {
    enum Phase {
        /// Between requests, or a request's head or body arriving.
        case reading
        /// A head arrived and the responder decides on it (a key to look up): no body byte is
        /// read until it has.
        case admitting
        /// A rejected request's body arrives and is dropped; then its rejection is sent.
        case discarding(HTTPResponse)
        /// The responder works, or the answer is being written.
        case responding
        /// The last answer is out and the write side shut; input is drained until the peer closes.
        case lingering
        case closed
    }

    enum Action {
        /// Nothing to do on the socket.
        case none
        /// Ask the responder about the head (`HTTPResponder.admit`) and report with `admitted(_:)`.
        case admit(HTTPRequestHead)
        /// The responder's decision waits for a lookup: run it, read nothing meanwhile, and report
        /// its result with `admissionMade(_:)`.
        case awaitAdmission(@Sendable () async -> HTTPAdmission)
        /// Read the body, at most `limit` bytes (`expectedLength` from `Content-Length`), sending
        /// `100 Continue` first when `sendContinue`.
        case readBody(limit: Int, expectedLength: Int?, sendContinue: Bool)
        /// Read the refused request's body, at most `limit` bytes, and drop it.
        case discardBody(limit: Int)
        /// Hand the complete request to the responder; `route` is what admission matched.
        case respond(HTTPRequestHead, trailers: HTTPHeaders, route: Router.Match?, keepAlive: Bool)
        /// Send `response` as the answer to `head`.
        case send(HTTPResponse, for: HTTPRequestHead, keepAlive: Bool)
        /// Send an error answer, then close: the request cannot be read further. `worded`: the
        /// answer in the matched route's own shape, when it has one.
        case fail(HTTPStatus, String, retryAfterSeconds: Int?, worded: HTTPResponse?)
        /// The answer is out: parse what arrived meanwhile, then read the next request.
        case readNextRequest
        /// Stop reading: the peer half-closed and waits for its answer, or too much is kept.
        case pauseReading
        /// Shut the write side, drain input for a moment, then close (RFC 9112 §9.6).
        case shutDownWriting
        case close
    }

    /// What to do with bytes that arrive.
    enum Input: Equatable {
        /// Parse them now.
        case parse
        /// Keep them until the answer being made is out (pipelining).
        case keep
        /// Drop them: the connection is ending.
        case ignore
    }

    let limits: HTTPServer.Configuration.Limits
    private(set) var phase = Phase.reading
    /// Whether the connection stays open after the answer being made.
    private(set) var keepAlive = true
    /// The peer shut its sending side (a FIN): it may still wait for an answer.
    private(set) var peerClosed = false
    private(set) var requestsServed = 0
    /// The head of the request being read or refused.
    private(set) var head: HTTPRequestHead?
    private var framing = HTTPRequestParser.Framing.none
    /// The route admission matched, handed on with the request so it is not resolved again.
    private var route: Router.Match?

    init(limits: HTTPServer.Configuration.Limits) {
        self.limits = limits
    }

    var input: Input {
        switch phase {
        case .reading, .discarding: .parse
        case .admitting, .responding: .keep
        case .lingering, .closed: .ignore
        }
    }

    var isReceiving: Bool { input == .parse }
    /// Whether body bytes are kept for the responder (not dropped, nor after an error answer).
    var keepsBody: Bool {
        if case .reading = phase { return true }
        return false
    }
    var isAdmitting: Bool {
        if case .admitting = phase { return true }
        return false
    }
    var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    // MARK: A request arrives

    mutating func headReceived(_ head: HTTPRequestHead, framing: HTTPRequestParser.Framing) -> Action {
        self.head = head
        self.framing = framing
        route = nil
        // RFC 9110 §10.1.1: an expectation other than 100-continue may be refused with 417.
        if head.headers.contains("Expect") && !head.expectsContinue && head.version == .http1_1 {
            return fail(.expectationFailed, "only 100-continue is supported")
        }
        return .admit(head)
    }

    /// The responder's decision on the head. A pending one stops reading until it is made, so that
    /// a refused request has none of its body read (and `Expect: 100-continue` gets the refusal
    /// instead of 100).
    mutating func admitted(_ admission: HTTPAdmission) -> Action {
        guard let head else { return .none }
        let hasBody = framing != .none && framing != .length(0)
        switch admission {
        case .pending(let decision):
            phase = .admitting
            return .awaitAdmission(decision)
        case .accept(let maxBodyBytes, let route):
            let limit = maxBodyBytes ?? limits.maxBodyBytes
            var expectedLength: Int?
            if case .length(let length) = framing {
                // RFC 9110 §15.5.14: refused from the head, before any of the body is read.
                guard length <= limit else { return fail(.contentTooLarge, HTTPParseError.bodyTooLarge.description, route: route) }
                expectedLength = length
            }
            self.route = route
            return .readBody(limit: limit, expectedLength: expectedLength, sendContinue: hasBody && head.expectsContinue)
        case .reject(let response):
            let discardLimit = limits.maxDiscardedBodyBytes
            var discardable = !head.expectsContinue
            if case .length(let length) = framing, length > discardLimit { discardable = false }
            if hasBody && !discardable {
                // The client holds the body back or it is too large to drop: answer now, then close.
                phase = .responding
                return .send(response, for: head, keepAlive: false)
            }
            phase = .discarding(response)
            return .discardBody(limit: discardLimit)
        }
    }

    /// A pending admission ended; nothing happens if the connection closed meanwhile.
    mutating func admissionMade(_ admission: HTTPAdmission) -> Action {
        guard isAdmitting else { return .none }
        phase = .reading
        return admitted(admission)
    }

    /// The request's body ended: the responder gets it, or a refused one gets its refusal.
    mutating func requestEnded(trailers: HTTPHeaders, serverStopping: Bool) -> Action {
        guard let head else { return .none }
        self.head = nil
        requestsServed += 1
        let keepAlive = head.wantsKeepAlive && !peerClosed && !serverStopping && requestsServed < limits.maxRequestsPerConnection
        let previous = phase
        phase = .responding
        let route = self.route
        self.route = nil
        if case .discarding(let response) = previous { return .send(response, for: head, keepAlive: keepAlive) }
        return .respond(head, trailers: trailers, route: route, keepAlive: keepAlive)
    }

    /// Bytes arrived while an answer is being made: reading pauses once `count` are kept, so a
    /// client that does not read its answers cannot make the server buffer without bound.
    func kept(_ count: Int) -> Action {
        count >= limits.maxPipelinedBytes ? .pauseReading : .none
    }

    // MARK: Answers

    /// An answer's head is about to be encoded: says whether it announces keep-alive. `endsByClosing`:
    /// its body's end is marked by closing (a stream of unknown length to an HTTP/1.0 client).
    mutating func answerStarts(keepAlive requested: Bool, responseSaysClose: Bool, endsByClosing: Bool, serverStopping: Bool) -> Bool {
        keepAlive = requested && !peerClosed && !serverStopping && !responseSaysClose && !endsByClosing
        return keepAlive
    }

    /// The whole answer is on the wire: read the next request, or end the connection.
    mutating func answerWritten() -> Action {
        if keepAlive {
            phase = .reading
            return .readNextRequest
        }
        // A peer that half-closed sends nothing more: there is nothing to drain.
        if peerClosed { return .close }
        phase = .lingering
        return .shutDownWriting
    }

    /// The request cannot be read further (parse error, limit, timeout, no budget): an error answer,
    /// then the connection ends.
    /// A route that words its refusals (`Router.Route.refusal`) answers in its API's shape.
    mutating func fail(_ status: HTTPStatus, _ message: String, retryAfterSeconds: Int? = nil, route: Router.Match? = nil) -> Action {
        phase = .responding
        keepAlive = false
        var worded = (route ?? self.route)?.route.refusal?(status, message)
        if worded != nil {
            // Named like every answer the API's clients get, so that one can be traced in the log.
            worded?.headers.set("x-request-id", RequestID.make())
            if let retryAfterSeconds { worded?.headers.set("Retry-After", String(retryAfterSeconds)) }
        }
        return .fail(status, message, retryAfterSeconds: retryAfterSeconds, worded: worded)
    }

    // MARK: The peer, the clock and the server

    /// The peer shut its sending side. A complete request is still answered: a client that closed
    /// its sending side waits for the answer (RFC 9112 §9.6); one that is really gone shows it as a
    /// reset or a failed write, which close the connection. A request cut short is abandoned.
    mutating func peerHalfClosed() -> Action {
        peerClosed = true
        if case .responding = phase { return .pauseReading }
        return .close
    }

    /// The deadline passed: a request being received gets 408, anything else closes quietly.
    mutating func deadlinePassed(_ expiry: ConnectionDeadline.Expiry) -> Action {
        switch (expiry, phase) {
        case (.requestTimeout, .reading), (.requestTimeout, .discarding), (.requestTimeout, .admitting):
            return fail(.requestTimeout, "request not received in time")
        default:
            return .close
        }
    }

    /// The server stops: an idle connection (`idle`: no byte of a next request) closes now, a busy
    /// one after its current answer.
    mutating func serverStopping(idle: Bool) -> Action {
        switch phase {
        case .reading where idle:
            return .close
        case .responding:
            keepAlive = false
            return .none
        default:
            return .none
        }
    }

    mutating func closed() {
        phase = .closed
    }
}
