/// How a connection performs its state machine's actions, and the share of the server's body
/// budget its body holds.
extension Connection {
    /// Does on the socket what `machine` decided. Runs on the loop.
    func perform(_ action: ConnectionStateMachine.Action) {
        switch action {
        case .none:
            break
        case .admit(let head):
            perform(machine.admitted(server.responder.admit(head)))
        case .awaitAdmission(let decision):
            awaitAdmission(decision)
        case .readBody(let limit, let expectedLength, let sendContinue):
            parser.maxBodyBytes = limit
            if let expectedLength {
                guard takeBodyBudget(upTo: expectedLength, stepping: false) else { return }
            }
            body = RequestBodyBuffer(expectedLength: expectedLength)
            if sendContinue {
                output.append(ResponseEncoder.continueResponse)
                flush()
            }
        case .discardBody(let limit):
            parser.maxBodyBytes = limit
        case .respond(let head, let trailers, let route, let keepAlive):
            respond(
                to: HTTPRequest(
                    head: head, body: body.take(), trailers: trailers, remoteAddress: remoteAddress, route: route,
                    loopExecutor: loop.taskExecutor),
                keepAlive: keepAlive)
        case .send(let response, let head, let keepAlive):
            send(response, for: head, keepAlive: keepAlive)
        case .fail(let status, let message, let retryAfterSeconds, let worded):
            if let worded, let head = machine.head {
                giveBackBodyBudget()
                send(worded, for: head, keepAlive: false)
            } else {
                answerAndClose(status, message, retryAfterSeconds: retryAfterSeconds)
            }
        case .readNextRequest:
            deadline.enter(.waitingForRequest, at: .now)
            if !feeding { pump() }
        case .pauseReading:
            pauseReading()
        case .shutDownWriting:
            // Closing the write side first and draining input for a moment keeps an answer sent
            // while the client was still sending from being destroyed by a reset (RFC 9112 §9.6).
            transport.shutdownWrite()
            inbound = []
            deadline.enter(.lingering, at: .now)
            if !wantsReading { resumeReading() }
        case .close:
            close()
        }
    }

    /// Runs a responder's admission that waits for a lookup; no body byte is read until it is made.
    func awaitAdmission(_ decision: @escaping @Sendable () async -> HTTPAdmission) {
        let task = Task.immediate(executorPreference: loop.taskExecutor) { [self] in
            let admission = await decision()
            loop.execute { [self] in
                admissionTask = nil
                perform(machine.admissionMade(admission))
                if !feeding { pump() }
            }
        }
        // A decision made without suspending has already been acted on; reading stops only
        // for one that waits.
        if machine.isAdmitting {
            admissionTask = task
            pauseReading()
        }
    }

    /// Makes sure this connection's body holds `bytes` of the server's budget. A chunked body
    /// (`stepping`) takes a step ahead, so that it does not touch the shared counter for every
    /// chunk. When the budget is spent: answers 503 and closes, and returns false.
    func takeBodyBudget(upTo bytes: Int, stepping: Bool) -> Bool {
        guard bytes > bodyBytesTaken else { return true }
        let needed = bytes - bodyBytesTaken
        let ahead = stepping ? max(needed, Self.bodyBudgetStep) : needed
        if server.bodyBudget.take(ahead) {
            bodyBytesTaken += ahead
            return true
        }
        if ahead > needed, server.bodyBudget.take(needed) {
            bodyBytesTaken += needed
            return true
        }
        perform(machine.fail(.serviceUnavailable, "too many request bodies are arriving at once; retry later", retryAfterSeconds: 1))
        return false
    }

    static let bodyBudgetStep = 64 * 1024

    /// The body went to the responder, or will never be read: it no longer counts.
    func giveBackBodyBudget() {
        server.bodyBudget.giveBack(bodyBytesTaken)
        bodyBytesTaken = 0
    }
}
