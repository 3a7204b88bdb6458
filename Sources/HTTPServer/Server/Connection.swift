import Dispatch

/// One client connection: reads, parses, hands complete requests to the responder one at a time,
/// and writes the answers in order.
///
/// Pipelining: bytes that arrive while a request is answered are kept (up to a limit, then reading
/// pauses) and parsed once the answer is out, so answers can never overtake each other and a client
/// that does not read its answers cannot make the server buffer without bound.
final class Connection: @unchecked Sendable {
    // Safety: every stored `var` is read and written only on `loop`'s thread. The class is Sendable
    // so that the responder's task can hop back to that loop with it.

    private enum Phase {
        /// Between requests, or a request's head or body arriving.
        case reading
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
    private let transport: any ConnectionTransport
    let loop: EventLoop
    let remoteAddress: SocketAddress
    /// Strong: a connection keeps its server alive until it closes (the cycle ends at `close`).
    private let server: HTTPServer
    private var configuration: HTTPServer.Configuration { server.configuration }

    private var phase = Phase.reading
    /// False while a TLS handshake runs: no HTTP byte moves before it ends.
    private var established = false
    private var parser: HTTPRequestParser
    private var deadline: ConnectionDeadline

    private var head: HTTPRequestHead?
    private var body = RequestBodyBuffer(expectedLength: nil)
    /// Bytes received but not parsed yet (pipelined requests).
    private var inbound: [UInt8] = []
    /// True while `feed` runs: an answer finished inside it lets `feed` go on parsing, instead of
    /// starting a nested parse (a long pipeline must not grow the stack).
    private var feeding = false

    private var output = OutputQueue()
    private var keepAlive = true
    /// The whole answer is queued in `output`: once flushed, the next request may start.
    private var answerQueued = false
    private var stream: StreamedBody?
    private var requestsServed = 0
    private var peerClosed = false
    /// The responder's task while it works; cancelled if the client leaves.
    private var responderTask: Task<Void, Never>?
    private var awaitingResponder = false
    /// The task producing a streamed body.
    private var producerTask: Task<Void, Never>?

    /// What the loop wakes this connection for.
    private var wantsReading = true
    private var wantsWriting = false

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
            server.connectionClosed()
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
    private func continueHandshake() {
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
        case .responding:
            inbound.append(contentsOf: bytes)
            if inbound.count >= configuration.limits.maxPipelinedBytes { pauseReading() }
        case .lingering, .closed:
            break
        }
    }

    /// Parses `bytes` until they run out or a request is being answered; keeps the rest in `inbound`.
    private func feed(_ bytes: UnsafeRawBufferPointer) {
        feeding = true
        defer { feeding = false }
        var offset = 0
        if deadline.activity == .waitingForRequest { deadline.enter(.readingHead, at: .now) }
        while true {
            switch phase {
            case .reading, .discarding: break
            case .responding:
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
                if case .reading = phase { body.append(part) }
                deadline.progress(at: .now)
            case .end(let trailers):
                receivedEnd(trailers: trailers)
                if case .reading = phase, offset < bytes.count { deadline.enter(.readingHead, at: .now) }
            }
        }
    }

    /// Reads the rest of a `Content-Length` body straight into place, without the loop's buffer.
    private func readBodyInPlace() {
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
            deadline.progress(at: .now)
        }
        // The body is complete: let the parser say so.
        if case .reading = phase, head != nil, parser.remainingFixedBody == nil {
            feed(UnsafeRawBufferPointer(start: nil, count: 0))
            pump()
        }
    }

    /// Parses what was kept while the last answer went out, then reads again.
    private func pump() {
        while isReceiving, !inbound.isEmpty {
            let pending = inbound
            inbound = []
            pending.withUnsafeBytes { feed($0) }
        }
        if isReceiving && !wantsReading && !peerClosed { resumeReading() }
    }

    private func received(_ head: HTTPRequestHead) {
        let framing = parser.framing
        let hasBody = framing != .none && framing != .length(0)
        deadline.enter(.readingBody, at: .now)
        self.head = head
        // RFC 9110 §10.1.1: an expectation other than 100-continue may be refused with 417.
        if head.headers.contains("Expect") && !head.expectsContinue && head.version == .http1_1 {
            answerAndClose(.expectationFailed, "only 100-continue is supported")
            return
        }
        switch server.responder.admit(head) {
        case .accept(let maxBodyBytes):
            let limit = maxBodyBytes ?? configuration.limits.maxBodyBytes
            if case .length(let length) = framing, length > limit {
                answerAndClose(.contentTooLarge, HTTPParseError.bodyTooLarge.description)
                return
            }
            parser.maxBodyBytes = limit
            if case .length(let length) = framing {
                body = RequestBodyBuffer(expectedLength: length)
            } else {
                body = RequestBodyBuffer(expectedLength: nil)
            }
            if hasBody && head.expectsContinue {
                output.append(ResponseEncoder.continueResponse)
                flush()
            }
        case .reject(let response):
            let discardLimit = configuration.limits.maxDiscardedBodyBytes
            var discardable = !head.expectsContinue
            if case .length(let length) = framing, length > discardLimit { discardable = false }
            if hasBody && !discardable {
                // The client holds the body back or it is too large to drop: answer now, then close.
                phase = .responding
                send(response, for: head, keepAlive: false)
                return
            }
            parser.maxBodyBytes = discardLimit
            phase = .discarding(response)
        }
    }

    private func receivedEnd(trailers: HTTPHeaders) {
        guard let head else { return }
        self.head = nil
        requestsServed += 1
        let keepAlive = head.wantsKeepAlive && !peerClosed && !server.isShuttingDown
            && requestsServed < configuration.limits.maxRequestsPerConnection
        let previousPhase = phase
        phase = .responding
        deadline.enter(.responding, at: .now)
        switch previousPhase {
        case .discarding(let response):
            send(response, for: head, keepAlive: keepAlive)
        default:
            let request = HTTPRequest(head: head, body: body.take(), trailers: trailers, remoteAddress: remoteAddress)
            respond(to: request, keepAlive: keepAlive)
        }
    }

    /// Runs the responder. `Task.immediate` starts it right here on the loop: a handler that does not
    /// suspend answers without any thread hop. One that suspends resumes on the loop too (its task
    /// prefers the loop's executor), where its answer is written.
    private func respond(to request: HTTPRequest, keepAlive: Bool) {
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

    private func peerDidClose() {
        peerClosed = true
        switch phase {
        case .responding:
            // The client is gone (or half-closed): the answer is still sent, then the connection ends.
            responderTask?.cancel()
            pauseReading()
        default:
            close()
        }
    }

    private var isReceiving: Bool {
        switch phase {
        case .reading, .discarding: true
        default: false
        }
    }

    private var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    // MARK: Output

    /// Queues an answer's head and body and starts writing.
    private func send(_ response: HTTPResponse, for head: HTTPRequestHead, keepAlive requested: Bool) {
        guard !isClosed else { return }
        keepAlive = requested && !peerClosed && !server.isShuttingDown
            && !response.headers.containsToken("close", in: "Connection")
        let headOnly = head.method == .head || response.status.forbidsBody
        let encoder = server.encoder
        switch response.body {
        case .bytes(let bytes):
            output.append(encoder.head(status: response.status, headers: response.headers, framing: .length(bytes.count),
                                       keepAlive: keepAlive, requestVersion: head.version))
            if !headOnly { output.append(bytes) }
            answerQueued = true
        case .stream(let length, let produce):
            let framing: ResponseFraming = length.map { .length($0) } ?? (head.version == .http1_1 ? .chunked : .untilClose)
            if framing == .untilClose { keepAlive = false }
            output.append(encoder.head(status: response.status, headers: response.headers, framing: framing,
                                       keepAlive: keepAlive, requestVersion: head.version))
            if headOnly {
                answerQueued = true
            } else {
                stream = StreamedBody(framing: framing)
                startProducer(produce)
            }
        }
        flush()
    }

    /// Answers a request that cannot be read further (parse error, limit, timeout) and closes.
    private func answerAndClose(_ status: HTTPStatus, _ message: String) {
        phase = .responding
        keepAlive = false
        let answer = server.encoder.errorResponse(status, message)
        output.append(answer.head)
        output.append(answer.body)
        answerQueued = true
        flush()
    }

    /// The socket takes bytes again. Called by the loop.
    func writable() {
        guard established else {
            continueHandshake()
            return
        }
        flush()
    }

    private func flush() {
        guard !isClosed else { return }
        let result: OutputQueue.FlushResult
        do {
            result = try output.flush(to: transport)
        } catch {
            close()
            return
        }
        switch result {
        case .flushed:
            if wantsWriting { watch(writing: false) }
            if deadline.activity == .writingBlocked { deadline.enter(.responding, at: .now) }
            stream?.resumeWriter()
            if answerQueued { answerFinished() }
        case .wouldBlock(let progressed):
            if deadline.activity != .writingBlocked {
                deadline.enter(.writingBlocked, at: .now)
            } else if progressed {
                deadline.progress(at: .now)
            }
            if !wantsWriting { watch(writing: true) }
        }
    }

    /// The whole answer is on the wire: close, or read the next request.
    private func answerFinished() {
        answerQueued = false
        stream = nil
        guard keepAlive else {
            closeAfterAnswer()
            return
        }
        phase = .reading
        deadline.enter(.waitingForRequest, at: .now)
        if !feeding { pump() }
    }

    /// Closes the write side first and drains input for a moment, so that an answer sent while the
    /// client was still sending is not destroyed by a reset (RFC 9112 §9.6).
    private func closeAfterAnswer() {
        guard !peerClosed else {
            close()
            return
        }
        transport.shutdownWrite()
        phase = .lingering
        inbound = []
        deadline.enter(.lingering, at: .now)
        if !wantsReading { resumeReading() }
    }

    // MARK: Streamed bodies

    private func startProducer(_ produce: @escaping @Sendable (any HTTPBodyWriter) async throws -> Void) {
        let writer = ConnectionBodyWriter(connection: self)
        producerTask = Task { [self] in
            let succeeded: Bool
            do {
                try await produce(writer)
                succeeded = true
            } catch {
                succeeded = false
            }
            loop.execute { [self] in finishStream(succeeded: succeeded) }
        }
    }

    func streamWrite(_ bytes: [UInt8], then continuation: CheckedContinuation<Void, any Error>) {
        guard !isClosed, var stream, !bytes.isEmpty else {
            isClosed || stream == nil ? continuation.resume(throwing: ConnectionClosedError()) : continuation.resume()
            return
        }
        guard stream.accept(bytes.count) else {
            // More bytes than the declared length: the framing would lie, so the connection ends.
            continuation.resume(throwing: ConnectionClosedError())
            close()
            return
        }
        if stream.framing == .chunked {
            output.append(ResponseEncoder.chunkHeader(bytes.count))
            output.append(bytes)
            output.append(ResponseEncoder.crlf)
        } else {
            output.append(bytes)
        }
        if output.pendingBytes < configuration.limits.outputHighWaterMark {
            continuation.resume()
        } else {
            stream.waitingWriter = continuation
        }
        self.stream = stream
        flush()
    }

    private func finishStream(succeeded: Bool) {
        producerTask = nil
        guard !isClosed, let stream else { return }
        guard succeeded, stream.isComplete else {
            // A body that ends early cannot be framed honestly; closing tells the client it is cut short.
            close()
            return
        }
        if stream.framing == .chunked { output.append(ResponseEncoder.lastChunk) }
        answerQueued = true
        flush()
    }

    // MARK: Deadlines and shutdown

    /// Called by the loop's ticker.
    func checkDeadline(at now: ContinuousClock.Instant) {
        guard let expiry = deadline.expired(at: now) else { return }
        switch (expiry, phase) {
        case (.requestTimeout, .reading), (.requestTimeout, .discarding):
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
        responderTask?.cancel()
        responderTask = nil
        producerTask?.cancel()
        producerTask = nil
        stream?.waitingWriter?.resume(throwing: ConnectionClosedError())
        stream = nil
        output.removeAll()
        loop.unregister(self)
        transport.close()
        server.connectionClosed()
    }

    // MARK: Interest

    private func pauseReading() {
        if wantsReading { watch(reading: false) }
    }

    private func resumeReading() {
        if !wantsReading { watch(reading: true) }
        readBufferedInput()
    }

    /// Bytes a TLS session decrypted but had no room to hand over wake no epoll: read them from
    /// the loop's next turn, as if the socket had them.
    private func readBufferedInput() {
        guard wantsReading, !isClosed, transport.hasBufferedInput else { return }
        loop.enqueue { [self] in readable() }
    }

    private func watch(reading: Bool? = nil, writing: Bool? = nil) {
        wantsReading = reading ?? wantsReading
        wantsWriting = writing ?? wantsWriting
        loop.watch(self, reading: wantsReading, writing: wantsWriting)
    }
}
