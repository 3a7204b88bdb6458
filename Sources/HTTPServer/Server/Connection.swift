import Dispatch

/// One client connection: reads, parses, hands complete requests to the responder one at a time,
/// and writes the answers in order. What to do next is decided by `ConnectionStateMachine`, which
/// it tells what happened; this class performs its actions on the socket (`perform`).
///
/// Pipelining: bytes that arrive while a request is answered are kept (up to a limit, then reading
/// pauses) and parsed once the answer is out, so answers can never overtake each other and a client
/// that does not read its answers cannot make the server buffer without bound.
final class Connection: @unchecked Sendable {
    // Safety: every stored `var` is read and written only on `loop`'s thread. The class is Sendable
    // so that the responder's task can hop back to that loop with it. Its members are internal, not
    // private, for its extensions in Connection+Actions.swift and Connection+Output.swift; nothing
    // else in the module touches them.

    let fd: Int32
    /// The socket, or a TLS session on it.
    let transport: any ConnectionTransport
    let loop: EventLoop
    let remoteAddress: SocketAddress
    /// Strong: a connection keeps its server alive until it closes (the cycle ends at `close`).
    let server: HTTPServer
    var configuration: HTTPServer.Configuration { server.configuration }

    var machine: ConnectionStateMachine
    /// False while a TLS handshake runs: no HTTP byte moves before it ends.
    var established = false
    var parser: HTTPRequestParser
    var deadline: ConnectionDeadline

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
    /// The whole answer is queued in `output`: once flushed, the next request may start.
    var answerQueued = false
    var stream: StreamedBody?
    /// The responder's task while it works; cancelled if the client leaves.
    var responderTask: Task<Void, Never>?
    var awaitingResponder = false
    /// The task producing a streamed body.
    var producerTask: Task<Void, Never>?

    /// What the loop wakes this connection for.
    var wantsReading = true
    var wantsWriting = false
    /// Reading stopped until the socket takes bytes again (`readWaitsForRoomToSend`).
    var readingWaitsForRoom = false

    init(fd: Int32, transport: any ConnectionTransport, loop: EventLoop, server: HTTPServer, remoteAddress: SocketAddress) {
        self.fd = fd
        self.transport = transport
        self.loop = loop
        self.server = server
        self.remoteAddress = remoteAddress
        parser = HTTPRequestParser(limits: server.configuration.limits.parser, maxBodyBytes: server.configuration.limits.maxBodyBytes)
        deadline = ConnectionDeadline(timeouts: server.configuration.timeouts, now: .now)
        machine = ConnectionStateMachine(limits: server.configuration.limits)
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
            case .wouldBlock:
                waitForRoomIfTheReadMust()
                return
            case .done(let n): count = n
            }
        } catch {
            close()
            return
        }
        guard count > 0 else {
            perform(machine.peerHalfClosed())
            return
        }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
        defer {
            if machine.keepsBody, parser.remainingFixedBody != nil { readBodyInPlace() }
            readBufferedInput()
        }
        switch machine.input {
        case .parse:
            feed(bytes)
            pump()
        case .keep:
            inbound.append(contentsOf: bytes)
            perform(machine.kept(inbound.count))
        case .ignore:
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
            switch machine.input {
            case .parse: break
            case .keep:
                if offset < bytes.count { inbound.append(contentsOf: bytes[offset...]) }
                return
            case .ignore:
                return
            }
            let event: HTTPRequestParser.Event?
            do {
                event = try parser.next(bytes, at: &offset)
            } catch {
                perform(machine.fail(error.status, error.description))
                return
            }
            guard let event else { return }
            switch event {
            case .head(let head):
                deadline.enter(.readingBody, at: .now)
                perform(machine.headReceived(head, framing: parser.framing))
            case .body(let part):
                if machine.keepsBody {
                    guard takeBodyBudget(upTo: body.count + part.count, stepping: true) else { return }
                    body.append(part)
                }
                deadline.progress(at: .now, bytes: part.count)
            case .end(let trailers):
                receivedEnd(trailers: trailers)
                if machine.keepsBody, offset < bytes.count { deadline.enter(.readingHead, at: .now) }
            }
        }
    }

    /// Reads the rest of a `Content-Length` body straight into place, without the loop's buffer.
    func readBodyInPlace() {
        while let remaining = parser.remainingFixedBody, machine.keepsBody {
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
            guard let count else {
                waitForRoomIfTheReadMust()
                return
            }
            guard count > 0 else {
                perform(machine.peerHalfClosed())
                return
            }
            parser.consumeFixedBody(count)
            deadline.progress(at: .now, bytes: count)
        }
        // The body is complete: let the parser say so.
        if machine.keepsBody, machine.head != nil, parser.remainingFixedBody == nil {
            feed(UnsafeRawBufferPointer(start: nil, count: 0))
            pump()
        }
    }

    /// Parses what was kept while the last answer went out, then reads again.
    func pump() {
        while machine.isReceiving, !inbound.isEmpty {
            let pending = inbound
            inbound = []
            pending.withUnsafeBytes { feed($0) }
        }
        if machine.isReceiving && !wantsReading && !machine.peerClosed { resumeReading() }
    }

    func receivedEnd(trailers: HTTPHeaders) {
        guard machine.head != nil else { return }
        deadline.enter(.responding, at: .now)
        giveBackBodyBudget()
        perform(machine.requestEnded(trailers: trailers, serverStopping: server.isShuttingDown))
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

    var isClosed: Bool { machine.isClosed }

    // MARK: Deadlines and shutdown

    /// Called by the loop's ticker.
    func checkDeadline(at now: ContinuousClock.Instant) {
        guard let expiry = deadline.expired(at: now) else { return }
        perform(machine.deadlinePassed(expiry))
    }

    /// The server stops: an idle connection closes now, a busy one after its current answer.
    func beginShutdown() {
        perform(machine.serverStopping(idle: parser.isBetweenRequests && inbound.isEmpty))
    }

    func close() {
        guard !isClosed else { return }
        machine.closed()
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

    /// A read that must first send into a full socket stops reading until the socket takes bytes:
    /// the socket stays readable all the while (the peer's records wait in it), and the loop would
    /// wake for it, and fail the same read, without end.
    func waitForRoomIfTheReadMust() {
        guard transport.readWaitsForRoomToSend else { return }
        readingWaitsForRoom = true
        pauseReading()
        if !wantsWriting { watch(writing: true) }
    }

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
