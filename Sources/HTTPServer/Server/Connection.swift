import Dispatch

/// One client connection: reads, parses, hands complete requests to the responder one at a time,
/// and writes the answers in order.
///
/// Pipelining: bytes that arrive while a request is answered are kept (up to a limit, then reading
/// pauses) and parsed once the answer is out, so answers can never overtake each other and a client
/// that does not read its answers cannot make the server buffer without bound.
final class Connection: @unchecked Sendable {
    // Safety: every stored `var` is read and written only on `loop`'s thread. The class is Sendable
    // so that the responder's task can hop back to that loop with it. Its members are internal, not
    // private, for its extensions in Connection+Admission.swift and Connection+Output.swift; nothing
    // else in the module touches them.

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

    let fd: Int32
    /// The socket, or a TLS session on it.
    let transport: any ConnectionTransport
    let loop: EventLoop
    let remoteAddress: SocketAddress
    /// Strong: a connection keeps its server alive until it closes (the cycle ends at `close`).
    let server: HTTPServer
    var configuration: HTTPServer.Configuration { server.configuration }

    var phase = Phase.reading
    /// False while a TLS handshake runs: no HTTP byte moves before it ends.
    var established = false
    var parser: HTTPRequestParser
    var deadline: ConnectionDeadline

    var head: HTTPRequestHead?
    /// The route admission matched, handed on with the request so that it is not resolved again.
    var admittedRoute: Router.Match?
    var body = RequestBodyBuffer(expectedLength: nil)
    /// What this connection's body holds of the server's `BodyBudget`.
    var bodyBytesTaken = 0
    /// The task deciding on a head (`HTTPAdmission.pending`), cancelled if the connection closes.
    var admissionTask: Task<Void, Never>?
    /// Bytes received but not parsed yet (pipelined requests).
    var inbound: [UInt8] = []
    /// True while `feed` runs: an answer finished inside it lets `feed` go on parsing, instead of
    /// starting a nested parse (a long pipeline must not grow the stack).
    var feeding = false

    var output = OutputQueue()
    var keepAlive = true
    /// The whole answer is queued in `output`: once flushed, the next request may start.
    var answerQueued = false
    var stream: StreamedBody?
    var requestsServed = 0
    var peerClosed = false
    /// The responder's task while it works; cancelled if the client leaves.
    var responderTask: Task<Void, Never>?
    var awaitingResponder = false
    /// The task producing a streamed body.
    var producerTask: Task<Void, Never>?

    /// What the loop wakes this connection for.
    var wantsReading = true
    var wantsWriting = false

    init(fd: Int32, transport: any ConnectionTransport, loop: EventLoop, server: HTTPServer, remoteAddress: SocketAddress) {
        self.fd = fd
        self.transport = transport
        self.loop = loop
        self.server = server
        self.remoteAddress = remoteAddress
        parser = HTTPRequestParser(limits: server.configuration.limits.parser, maxBodyBytes: server.configuration.limits.maxBodyBytes)
        deadline = ConnectionDeadline(timeouts: server.configuration.timeouts, now: .now)
    }

    /// Starts reading. Runs on the loop.
    func start() {
        do {
            try loop.register(self)
        } catch {
            transport.close()
            server.connectionClosed(from: remoteAddress)
            return
        }
        if server.isShuttingDown {
            beginShutdown()
        } else {
            continueHandshake()
        }
    }

    /// Moves a TLS handshake on as the socket allows, under its own deadline; a plain connection
    /// is established at once.
    func continueHandshake() {
        let step: HandshakeStep
        do {
            step = try transport.handshake()
        } catch {
            close()
            return
        }
        switch step {
        case .done:
            established = true
            // The first request's head has its own deadline, from now.
            if deadline.activity == .handshaking { deadline = ConnectionDeadline(timeouts: configuration.timeouts, now: .now) }
            if wantsWriting { watch(writing: false) }
            readBufferedInput()
        case .wantsRead:
            if deadline.activity != .handshaking { deadline.enter(.handshaking, at: .now) }
            if wantsWriting { watch(writing: false) }
        case .wantsWrite:
            if deadline.activity != .handshaking { deadline.enter(.handshaking, at: .now) }
            if !wantsWriting { watch(writing: true) }
        }
    }

    // MARK: Input

    /// The socket has bytes, an end of stream or an error. Called by the loop.
    func readable() {
        guard !isClosed else { return }
        guard established else {
            continueHandshake()
            return
        }
        let buffer = loop.readBuffer
        let count: Int
        do {
            switch try transport.read(into: buffer) {
            case .wouldBlock: return
            case .done(let n): count = n
            }
        } catch {
            close()
            return
        }
        guard count > 0 else {
            peerDidClose()
            return
        }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
        defer {
            if case .reading = phase, parser.remainingFixedBody != nil { readBodyInPlace() }
            readBufferedInput()
        }
        switch phase {
        case .reading, .discarding:
            feed(bytes)
            pump()
        case .responding, .admitting:
            inbound.append(contentsOf: bytes)
            if inbound.count >= configuration.limits.maxPipelinedBytes { pauseReading() }
        case .lingering, .closed:
            break
        }
    }

    /// Parses `bytes` until they run out or a request is being answered; keeps the rest in `inbound`.
    func feed(_ bytes: UnsafeRawBufferPointer) {
        feeding = true
        defer { feeding = false }
        var offset = 0
        if deadline.activity == .waitingForRequest { deadline.enter(.readingHead, at: .now) }
        while true {
            switch phase {
            case .reading, .discarding: break
            case .responding, .admitting:
                if offset < bytes.count { inbound.append(contentsOf: bytes[offset...]) }
                return
            case .lingering, .closed:
                return
            }
            let event: HTTPRequestParser.Event?
            do {
                event = try parser.next(bytes, at: &offset)
            } catch {
                answerAndClose(error.status, error.description)
                return
            }
            guard let event else { return }
            switch event {
            case .head(let head):
                received(head)
            case .body(let part):
                if case .reading = phase {
                    guard takeBodyBudget(upTo: body.count + part.count, stepping: true) else { return }
                    body.append(part)
                }
                deadline.progress(at: .now, bytes: part.count)
            case .end(let trailers):
                receivedEnd(trailers: trailers)
                if case .reading = phase, offset < bytes.count { deadline.enter(.readingHead, at: .now) }
            }
        }
    }

    /// Reads the rest of a `Content-Length` body straight into place, without the loop's buffer.
    func readBodyInPlace() {
        while let remaining = parser.remainingFixedBody, case .reading = phase {
            let count: Int?
            do {
                count = try body.readInPlace(upTo: remaining) { space throws(SystemError) in
                    guard case .done(let count) = try transport.read(into: space) else { return nil }
                    return count
                }
            } catch {
                close()
                return
            }
            guard let count else { return }
            guard count > 0 else {
                peerDidClose()
                return
            }
            parser.consumeFixedBody(count)
            deadline.progress(at: .now, bytes: count)
        }
        // The body is complete: let the parser say so.
        if case .reading = phase, head != nil, parser.remainingFixedBody == nil {
            feed(UnsafeRawBufferPointer(start: nil, count: 0))
            pump()
        }
    }

    /// Parses what was kept while the last answer went out, then reads again.
    func pump() {
        while isReceiving, !inbound.isEmpty {
            let pending = inbound
            inbound = []
            pending.withUnsafeBytes { feed($0) }
        }
        if isReceiving && !wantsReading && !peerClosed { resumeReading() }
    }

    func received(_ head: HTTPRequestHead) {
        deadline.enter(.readingBody, at: .now)
        self.head = head
        admittedRoute = nil
        // RFC 9110 §10.1.1: an expectation other than 100-continue may be refused with 417.
        if head.headers.contains("Expect") && !head.expectsContinue && head.version == .http1_1 {
            answerAndClose(.expectationFailed, "only 100-continue is supported")
            return
        }
        decide(server.responder.admit(head), for: head)
    }

    func receivedEnd(trailers: HTTPHeaders) {
        guard let head else { return }
        self.head = nil
        requestsServed += 1
        let keepAlive = head.wantsKeepAlive && !peerClosed && !server.isShuttingDown
            && requestsServed < configuration.limits.maxRequestsPerConnection
        let previousPhase = phase
        phase = .responding
        deadline.enter(.responding, at: .now)
        giveBackBodyBudget()
        switch previousPhase {
        case .discarding(let response):
            send(response, for: head, keepAlive: keepAlive)
        default:
            let request = HTTPRequest(head: head, body: body.take(), trailers: trailers, remoteAddress: remoteAddress, route: admittedRoute)
            admittedRoute = nil
            respond(to: request, keepAlive: keepAlive)
        }
    }

    /// Runs the responder. `Task.immediate` starts it right here on the loop: a handler that does not
    /// suspend answers without any thread hop. One that suspends resumes on the loop too (its task
    /// prefers the loop's executor), where its answer is written.
    func respond(to request: HTTPRequest, keepAlive: Bool) {
        let responder = server.responder
        awaitingResponder = true
        let task = Task.immediate(executorPreference: loop.taskExecutor) { [self] in
            let response = await responder.respond(to: request)
            loop.execute { [self] in
                awaitingResponder = false
                responderTask = nil
                send(response, for: request.head, keepAlive: keepAlive)
            }
        }
        // A responder that never suspended has already answered: there is nothing left to cancel.
        if awaitingResponder { responderTask = task }
    }

    func peerDidClose() {
        peerClosed = true
        switch phase {
        case .responding:
            // The request is complete: a client that closed its sending side still waits for the
            // answer (RFC 9112 §9.6), so the responder goes on and the answer is sent, then the
            // connection ends. A client that is really gone shows it as a reset or a failed write,
            // which close the connection and cancel the responder.
            pauseReading()
        default:
            close()
        }
    }

    var isReceiving: Bool {
        switch phase {
        case .reading, .discarding: true
        default: false
        }
    }

    var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    // MARK: Deadlines and shutdown

    /// Called by the loop's ticker.
    func checkDeadline(at now: ContinuousClock.Instant) {
        guard let expiry = deadline.expired(at: now) else { return }
        switch (expiry, phase) {
        case (.requestTimeout, .reading), (.requestTimeout, .discarding), (.requestTimeout, .admitting):
            answerAndClose(.requestTimeout, "request not received in time")
        default:
            close()
        }
    }

    /// The server stops: an idle connection closes now, a busy one after its current answer.
    func beginShutdown() {
        switch phase {
        case .reading where parser.isBetweenRequests && inbound.isEmpty:
            close()
        case .responding:
            keepAlive = false
        default:
            break
        }
    }

    func close() {
        guard !isClosed else { return }
        phase = .closed
        giveBackBodyBudget()
        admissionTask?.cancel()
        admissionTask = nil
        responderTask?.cancel()
        responderTask = nil
        producerTask?.cancel()
        producerTask = nil
        stream?.waitingWriter?.resume(throwing: ConnectionClosedError())
        stream = nil
        output.removeAll()
        loop.unregister(self)
        transport.close()
        server.connectionClosed(from: remoteAddress)
    }

    // MARK: Interest

    func pauseReading() {
        if wantsReading { watch(reading: false) }
    }

    func resumeReading() {
        if !wantsReading { watch(reading: true) }
        readBufferedInput()
    }

    /// Bytes a TLS session decrypted but had no room to hand over wake no epoll: read them from
    /// the loop's next turn, as if the socket had them.
    func readBufferedInput() {
        guard wantsReading, !isClosed, transport.hasBufferedInput else { return }
        loop.enqueue { [self] in readable() }
    }

    func watch(reading: Bool? = nil, writing: Bool? = nil) {
        wantsReading = reading ?? wantsReading
        wantsWriting = writing ?? wantsWriting
        loop.watch(self, reading: wantsReading, writing: wantsWriting)
    }
}
