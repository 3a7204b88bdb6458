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
        /// A body is arriving; each received byte extends the deadline.
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
        case .readingHead: deadline = now + timeouts.headerRead
        case .readingBody: deadline = now + timeouts.bodyIdle
        case .responding: deadline = nil
        case .writingBlocked: deadline = now + timeouts.writeIdle
        case .lingering: deadline = now + Self.lingerTime
        }
    }

    /// Bytes moved: extends the deadlines that measure idleness.
    mutating func progress(at now: ContinuousClock.Instant) {
        switch activity {
        case .readingBody: deadline = now + timeouts.bodyIdle
        case .writingBlocked: deadline = now + timeouts.writeIdle
        default: break
        }
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
