/// Which deadline a connection is under, derived from what it is doing.
///
/// Pure: the connection reports what it does and when, and asks whether the deadline passed, so
/// tests drive it with any instants instead of waiting.
struct ConnectionDeadline: Sendable {
    enum Activity: Equatable, Sendable {
        /// A TLS handshake runs: it has its own time, not extended by progress.
        case handshaking
        /// Between requests (or before the first): no byte of a request yet.
        case waitingForRequest
        /// A request's head is arriving; the deadline is not extended by progress, so a client that
        /// sends one byte at a time cannot hold the connection (slow-header attacks).
        case readingHead
        /// A body is arriving; received bytes extend the deadline as long as they come at the
        /// minimum rate, and never past the whole request's deadline (slow-body attacks).
        case readingBody
        /// The responder is working; the server sets no deadline of its own.
        case responding
        /// Response bytes wait for the client to read; each sent byte extends the deadline.
        case writingBlocked
        /// The connection closes after an error answer; unread input is drained for a moment so
        /// that the answer is not destroyed by a reset.
        case lingering
    }

    enum Expiry: Equatable, Sendable {
        /// Close without a word: no request was in progress.
        case close
        /// Answer 408 and close (RFC 9110 §15.5.9).
        case requestTimeout
    }

    static let lingerTime: Duration = .seconds(2)

    let timeouts: HTTPServer.Configuration.Timeouts
    private(set) var activity: Activity = .waitingForRequest
    private(set) var deadline: ContinuousClock.Instant?
    /// When the request being read began (its first byte): the whole-request deadline counts from it.
    private var requestStarted: ContinuousClock.Instant?
    /// When the body began, and how many of its bytes arrived: the minimum rate is measured on them.
    private var bodyStarted: ContinuousClock.Instant?
    private var bodyBytes = 0

    init(timeouts: HTTPServer.Configuration.Timeouts, now: ContinuousClock.Instant, firstRequest: Bool = true) {
        self.timeouts = timeouts
        // A new connection gets the header timeout for its first byte, not the longer keep-alive one.
        deadline = now + (firstRequest ? timeouts.headerRead : timeouts.keepAliveIdle)
    }

    mutating func enter(_ activity: Activity, at now: ContinuousClock.Instant) {
        self.activity = activity
        switch activity {
        case .handshaking: deadline = now + timeouts.tlsHandshake
        case .waitingForRequest: deadline = now + timeouts.keepAliveIdle
        case .readingHead:
            requestStarted = now
            deadline = now + timeouts.headerRead
        case .readingBody:
            bodyStarted = now
            bodyBytes = 0
            deadline = bodyDeadline(lastProgress: now)
        case .responding: deadline = nil
        case .writingBlocked: deadline = now + timeouts.writeIdle
        case .lingering: deadline = now + Self.lingerTime
        }
    }

    /// A write could not send everything; `progressed`: it sent something; `answering`: an
    /// answer is among what waits. Only an answer's writing is timed by `writeIdle`: a
    /// `100 Continue` waiting alone while the request is still read leaves the connection under
    /// the reading deadlines, which its body must still meet.
    mutating func writeBlocked(at now: @autoclosure () -> ContinuousClock.Instant, progressed: Bool, answering: Bool) {
        guard answering else { return }
        if activity != .writingBlocked {
            enter(.writingBlocked, at: now())
        } else if progressed {
            progress(at: now())
        }
    }

    /// Everything queued has been written.
    mutating func writeFlushed(at now: @autoclosure () -> ContinuousClock.Instant) {
        if activity == .writingBlocked { enter(.responding, at: now()) }
    }

    /// `bytes` moved: extends the deadlines that measure idleness.
    mutating func progress(at now: ContinuousClock.Instant, bytes: Int = 0) {
        switch activity {
        case .readingBody:
            bodyBytes += bytes
            deadline = bodyDeadline(lastProgress: now)
        case .writingBlocked: deadline = now + timeouts.writeIdle
        default: break
        }
    }

    /// The earliest of: `bodyIdle` after the last bytes; the time by which the bytes received
    /// would have come at the minimum rate, plus `bodyIdle` of slack; the whole request's deadline.
    private func bodyDeadline(lastProgress now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        var deadline = now + timeouts.bodyIdle
        if timeouts.minBodyRate > 0, let bodyStarted {
            // Whole milliseconds: a body of up to 2^63 bytes at 1 byte/s cannot overflow a Duration.
            let earned = Duration.milliseconds(
                Int64(
                    clamping: bodyBytes.multipliedReportingOverflow(by: 1000).overflow
                        ? Int.max : bodyBytes * 1000 / timeouts.minBodyRate))
            deadline = min(deadline, bodyStarted + timeouts.bodyIdle + earned)
        }
        if let requestStarted { deadline = min(deadline, requestStarted + timeouts.requestRead) }
        return deadline
    }

    /// What to do if the deadline has passed at `now`; nil while it has not.
    func expired(at now: ContinuousClock.Instant) -> Expiry? {
        guard let deadline, now >= deadline else { return nil }
        switch activity {
        case .readingHead, .readingBody: return .requestTimeout
        default: return .close
        }
    }
}
