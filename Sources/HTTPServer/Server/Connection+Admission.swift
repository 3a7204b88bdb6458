/// How a connection acts on the responder's decision about a request head, and the share of the
/// server's body budget its body holds.
extension Connection {
    /// Acts on the responder's admission of `head`. A pending one stops reading until it is made,
    /// so that a refused request has none of its body read (and `Expect: 100-continue` gets the
    /// refusal instead of 100).
    func decide(_ admission: HTTPAdmission, for head: HTTPRequestHead) {
        let framing = parser.framing
        let hasBody = framing != .none && framing != .length(0)
        switch admission {
        case .pending(let decision):
            phase = .admitting
            let task = Task.immediate(executorPreference: loop.taskExecutor) { [self] in
                let admission = await decision()
                loop.execute { [self] in
                    admissionTask = nil
                    guard case .admitting = phase else { return }
                    phase = .reading
                    decide(admission, for: head)
                    if !feeding { pump() }
                }
            }
            // A decision made without suspending has already been acted on; reading stops only
            // for one that waits.
            if case .admitting = phase {
                admissionTask = task
                pauseReading()
            }
        case .accept(let maxBodyBytes, let route):
            let limit = maxBodyBytes ?? configuration.limits.maxBodyBytes
            if case .length(let length) = framing, length > limit {
                answerAndClose(.contentTooLarge, HTTPParseError.bodyTooLarge.description)
                return
            }
            parser.maxBodyBytes = limit
            admittedRoute = route
            if case .length(let length) = framing {
                guard takeBodyBudget(upTo: length, stepping: false) else { return }
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
        answerAndClose(.serviceUnavailable, "too many request bodies are arriving at once; retry later", retryAfterSeconds: 1)
        return false
    }

    static let bodyBudgetStep = 64 * 1024

    /// The body went to the responder, or will never be read: it no longer counts.
    func giveBackBodyBudget() {
        server.bodyBudget.giveBack(bodyBytesTaken)
        bodyBytesTaken = 0
    }
}
