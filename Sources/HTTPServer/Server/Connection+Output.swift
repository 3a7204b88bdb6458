/// How a connection writes answers: whole ones, error answers that close it, and streamed bodies.
extension Connection {
    // MARK: Output

    /// Queues an answer's head and body and starts writing.
    func send(_ response: HTTPResponse, for head: HTTPRequestHead, keepAlive requested: Bool) {
        guard !isClosed else { return }
        let headOnly = head.method == .head || response.status.forbidsBody
        let encoder = server.encoder
        let responseSaysClose = response.headers.containsToken("close", in: "Connection")
        switch response.body {
        case .bytes(let bytes):
            let keepAlive = machine.answerStarts(
                keepAlive: requested, responseSaysClose: responseSaysClose, endsByClosing: false,
                serverStopping: server.isShuttingDown)
            output.append(
                encoder.head(
                    status: response.status, headers: response.headers, framing: .length(bytes.count),
                    keepAlive: keepAlive, requestVersion: head.version))
            if !headOnly { output.append(bytes) }
            answerQueued = true
        case .stream(let length, let produce):
            let framing: ResponseFraming = length.map { .length($0) } ?? (head.version == .http1_1 ? .chunked : .untilClose)
            let keepAlive = machine.answerStarts(
                keepAlive: requested, responseSaysClose: responseSaysClose,
                endsByClosing: framing == .untilClose, serverStopping: server.isShuttingDown)
            output.append(
                encoder.head(
                    status: response.status, headers: response.headers, framing: framing,
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
    /// The state machine has already decided that the connection ends (`ConnectionStateMachine.fail`).
    func answerAndClose(_ status: HTTPStatus, _ message: String, retryAfterSeconds: Int?) {
        giveBackBodyBudget()
        let answer = server.encoder.errorResponse(status, message, retryAfterSeconds: retryAfterSeconds)
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
        if readingWaitsForRoom {
            // The read that had to send first goes on; it sends what it must as it reads.
            readingWaitsForRoom = false
            if !isClosed, machine.isReceiving, !machine.peerClosed { resumeReading() }
        }
    }

    func flush() {
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
            deadline.writeFlushed(at: .now)
            stream?.resumeWriter()
            if answerQueued { answerFinished() }
        case .wouldBlock(let progressed):
            deadline.writeBlocked(at: .now, progressed: progressed, answering: answerQueued || stream != nil)
            if !wantsWriting { watch(writing: true) }
        }
    }

    /// The whole answer is on the wire: close, or read the next request.
    func answerFinished() {
        answerQueued = false
        stream = nil
        perform(machine.answerWritten())
    }

    // MARK: Streamed bodies

    func startProducer(_ produce: @escaping @Sendable (any HTTPBodyWriter) async throws -> Void) {
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

    func finishStream(succeeded: Bool) {
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
}
