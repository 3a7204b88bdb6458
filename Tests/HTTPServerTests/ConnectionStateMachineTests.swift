import Testing

@testable import HTTPServer

/// The connection's decisions without a socket: the machine is told what happened and says what to
/// do, as `Connection` would be told by its socket and would act on it.
@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    // MARK: Keep-alive or close

    @Test func anHTTP11RequestKeepsTheConnectionAndTheNextRequestIsRead() throws {
        var machine = Self.machine()
        try machine.receive("GET /a HTTP/1.1\r\nHost: t\r\n\r\n", expecting: .readBody(limit: 1 << 20, expectedLength: nil, sendContinue: false))
        expect(machine.requestEnded(trailers: [:], serverStopping: false), .respond(keepAlive: true))
        let keepsAlive = machine.answerStarts(keepAlive: true, responseSaysClose: false, endsByClosing: false, serverStopping: false)
        #expect(keepsAlive)
        expect(machine.answerWritten(), .readNextRequest)
        #expect(machine.input == .parse)
    }

    @Test func connectionCloseFromTheClientEndsTheConnectionAfterTheAnswer() throws {
        var machine = Self.machine()
        try machine.receive("GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        expect(machine.requestEnded(trailers: [:], serverStopping: false), .respond(keepAlive: false))
        let keepsAlive = machine.answerStarts(keepAlive: false, responseSaysClose: false, endsByClosing: false, serverStopping: false)
        #expect(!keepsAlive)
        // The client may still be sending: the write side is shut first, not the whole socket.
        expect(machine.answerWritten(), .shutDownWriting)
        #expect(machine.input == .ignore)
    }

    @Test(arguments: [("", false), ("Connection: keep-alive\r\n", true), ("Connection: close\r\n", false)])
    func anHTTP10RequestKeepsTheConnectionOnlyWhenItAsks(header: String, keeps: Bool) throws {
        var machine = Self.machine()
        try machine.receive("GET /a HTTP/1.0\r\n\(header)\r\n")
        expect(machine.requestEnded(trailers: [:], serverStopping: false), .respond(keepAlive: keeps))
    }

    @Test func theAnswerItselfCanEndTheConnection() throws {
        let cases: [(saysClose: Bool, endsByClosing: Bool, stopping: Bool)] = [(true, false, false), (false, true, false), (false, false, true)]
        for (saysClose, endsByClosing, stopping) in cases {
            var machine = Self.machine()
            try machine.receive("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
            _ = machine.requestEnded(trailers: [:], serverStopping: false)
            let keepsAlive = machine.answerStarts(
                keepAlive: true, responseSaysClose: saysClose, endsByClosing: endsByClosing, serverStopping: stopping)
            #expect(!keepsAlive)
            expect(machine.answerWritten(), .shutDownWriting)
        }
    }

    @Test func theLastRequestAllowedOnAConnectionClosesIt() throws {
        var limits = HTTPServer.Configuration.Limits()
        limits.maxRequestsPerConnection = 2
        var machine = ConnectionStateMachine(limits: limits)
        try machine.receive("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        expect(machine.requestEnded(trailers: [:], serverStopping: false), .respond(keepAlive: true))
        _ = machine.answerStarts(keepAlive: true, responseSaysClose: false, endsByClosing: false, serverStopping: false)
        expect(machine.answerWritten(), .readNextRequest)
        try machine.receive("GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        expect(machine.requestEnded(trailers: [:], serverStopping: false), .respond(keepAlive: false))
    }

    // MARK: Expect, body limits and refusals

    @Test func aBodyThatWaitsFor100ContinueGetsItOnceAdmitted() throws {
        var machine = Self.machine()
        try machine.receive(
            "POST /a HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            expecting: .readBody(limit: 1 << 20, expectedLength: 5, sendContinue: true))
        // No body, nothing to wait for: no 100.
        var empty = Self.machine()
        try empty.receive(
            "POST /a HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
            expecting: .readBody(limit: 1 << 20, expectedLength: 0, sendContinue: false))
    }

    @Test func anUnknownExpectationIsRefusedWith417AndCloses() throws {
        var machine = Self.machine()
        let (head, framing) = try Self.head("POST /a HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\n")
        expect(machine.headReceived(head, framing: framing), .fail(status: 417))
        #expect(machine.input == .keep)
        expect(machine.answerWritten(), .shutDownWriting)
        // HTTP/1.0 has no expectations (RFC 9110 §10.1.1): the field is ignored.
        var old = Self.machine()
        let (head10, framing10) = try Self.head("POST /a HTTP/1.0\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\n")
        expect(old.headReceived(head10, framing: framing10), .admit)
    }

    @Test func aDeclaredBodyOverTheRouteLimitGets413BeforeAnyOfItIsRead() throws {
        var machine = Self.machine()
        try machine.receive(
            "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n", admission: .accept(maxBodyBytes: 16), expecting: .fail(status: 413))
        #expect(!machine.keepsBody)
        expect(machine.answerWritten(), .shutDownWriting)
        // A chunked body's length is not known: the parser enforces the route's limit as it arrives.
        var chunked = Self.machine()
        try chunked.receive(
            "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", admission: .accept(maxBodyBytes: 16),
            expecting: .readBody(limit: 16, expectedLength: nil, sendContinue: false))
    }

    @Test func aRefusedRequestsSmallBodyIsDroppedAndTheConnectionKept() throws {
        var machine = Self.machine()
        try machine.receive(
            "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n", admission: .reject(.text(.unauthorized, "no")),
            expecting: .discardBody(limit: 64 * 1024))
        #expect(machine.input == .parse)
        #expect(!machine.keepsBody)
        expect(machine.requestEnded(trailers: [:], serverStopping: false), .send(status: 401, keepAlive: true))
    }

    @Test func aRefusedRequestsBodyTooLargeToDropOrHeldBackGetsItsAnswerAtOnceAndCloses() throws {
        let heads = [
            "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 65537\r\n\r\n",
            "POST /a HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
        ]
        for raw in heads {
            var machine = Self.machine()
            try machine.receive(raw, admission: .reject(.text(.unauthorized, "no")), expecting: .send(status: 401, keepAlive: false))
            #expect(machine.input == .keep)
        }
    }

    @Test func aLookupHoldsTheBodyBackUntilItDecides() throws {
        var machine = Self.machine()
        try machine.receive(
            "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n", admission: .pending { .accept(maxBodyBytes: nil) },
            expecting: .awaitAdmission)
        #expect(machine.input == .keep)
        expect(machine.admissionMade(.accept(maxBodyBytes: 8)), .readBody(limit: 8, expectedLength: 5, sendContinue: false))
        #expect(machine.keepsBody)
        // A decision that comes after the connection closed is not acted on.
        var closed = Self.machine()
        try closed.receive("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n", admission: .pending { .accept(maxBodyBytes: nil) })
        closed.closed()
        expect(closed.admissionMade(.accept(maxBodyBytes: 8)), .none)
    }

    // MARK: Pipelining

    @Test func pipelinedRequestsWaitForTheAnswerBeforeThemAndAreAnsweredInOrder() throws {
        var machine = Self.machine()
        try machine.receive("GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
        guard case .respond(let first, _, _, _) = machine.requestEnded(trailers: [:], serverStopping: false) else {
            Issue.record("the first request was not handed to the responder")
            return
        }
        #expect(first.target == "/first")
        // The second request's bytes are kept, not parsed, while the first is answered.
        #expect(machine.input == .keep)
        expect(machine.kept(100), .none)
        expect(machine.kept(64 * 1024), .pauseReading)
        _ = machine.answerStarts(keepAlive: true, responseSaysClose: false, endsByClosing: false, serverStopping: false)
        expect(machine.answerWritten(), .readNextRequest)
        try machine.receive("GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        guard case .respond(let second, _, _, _) = machine.requestEnded(trailers: [:], serverStopping: false) else {
            Issue.record("the second request was not handed to the responder")
            return
        }
        #expect(second.target == "/second")
        #expect(machine.requestsServed == 2)
    }

    // MARK: Half-close, deadlines, shutdown, errors

    @Test func aFINAfterACompleteRequestStillGetsItsAnswerThenCloses() throws {
        var machine = Self.machine()
        try machine.receive("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = machine.requestEnded(trailers: [:], serverStopping: false)
        // Half-closed, not gone: stop reading, keep answering.
        expect(machine.peerHalfClosed(), .pauseReading)
        let keepsAlive = machine.answerStarts(keepAlive: true, responseSaysClose: false, endsByClosing: false, serverStopping: false)
        #expect(!keepsAlive)
        // The peer sends nothing more: no lingering, the socket closes.
        expect(machine.answerWritten(), .close)
    }

    @Test func aFINWhileARequestIsIncompleteOrBeforeOneCloses() throws {
        var idle = Self.machine()
        expect(idle.peerHalfClosed(), .close)
        var midBody = Self.machine()
        try midBody.receive("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
        expect(midBody.peerHalfClosed(), .close)
    }

    @Test func aRequestTimeoutAnswers408WhileReceivingAndClosesOtherwise() throws {
        var receiving = Self.machine()
        try receiving.receive("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
        expect(receiving.deadlinePassed(.requestTimeout), .fail(status: 408))
        var admitting = Self.machine()
        try admitting.receive("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n", admission: .pending { .accept(maxBodyBytes: nil) })
        expect(admitting.deadlinePassed(.requestTimeout), .fail(status: 408))
        var responding = Self.machine()
        try responding.receive("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = responding.requestEnded(trailers: [:], serverStopping: false)
        expect(responding.deadlinePassed(.requestTimeout), .close)
        var idle = Self.machine()
        expect(idle.deadlinePassed(.close), .close)
    }

    @Test func stoppingClosesAnIdleConnectionAndEndsABusyOneAfterItsAnswer() throws {
        var idle = Self.machine()
        expect(idle.serverStopping(idle: true), .close)
        var midHead = Self.machine()
        expect(midHead.serverStopping(idle: false), .none)
        var busy = Self.machine()
        try busy.receive("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = busy.requestEnded(trailers: [:], serverStopping: false)
        expect(busy.serverStopping(idle: true), .none)
        expect(busy.answerWritten(), .shutDownWriting)
    }

    @Test func anErrorAnswerEndsTheConnection() {
        var machine = Self.machine()
        expect(machine.fail(.badRequest, "bad"), .fail(status: 400))
        #expect(!machine.keepAlive)
        #expect(machine.input == .keep)
        expect(machine.answerWritten(), .shutDownWriting)
        var halfClosed = Self.machine()
        _ = halfClosed.fail(.badRequest, "bad")
        _ = halfClosed.peerHalfClosed()
        expect(halfClosed.answerWritten(), .close)
    }

    @Test func theRouteAdmissionMatchedGoesWithTheRequest() throws {
        var router = Router()
        router.get("/items/{id}") { _, _ in .text(.ok, "") }
        var machine = Self.machine()
        let (head, framing) = try Self.head("GET /items/7 HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = machine.headReceived(head, framing: framing)
        _ = machine.admitted(router.admit(head))
        guard case .respond(_, _, let route, _) = machine.requestEnded(trailers: [:], serverStopping: false) else {
            Issue.record("the request was not handed to the responder")
            return
        }
        #expect(route?.pattern == "/items/{id}")
        #expect(route?.parameters["id"] == "7")
    }

    /// A route that words its refusals has the server's own refusals of its requests (a body too
    /// large from the head, a body too slow) in its shape; another route's stay plain text.
    @Test func aRouteThatWordsItsRefusalsGetsTheServersRefusalsInItsShape() throws {
        var router = Router()
        router.post("/worded", maxBodyBytes: 16, refusal: { status, reason in .json(status, Array(#"{"why":"\#(reason)"}"#.utf8)) }) { _, _ in
            .text(.ok, "")
        }
        router.post("/plain", maxBodyBytes: 16) { _, _ in .text(.ok, "") }
        for (path, worded) in [("/worded", true), ("/plain", false)] {
            var tooLarge = Self.machine()
            let (head, framing) = try Self.head("POST \(path) HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n")
            _ = tooLarge.headReceived(head, framing: framing)
            guard case .fail(let status, _, _, let answer) = tooLarge.admitted(router.admit(head)) else {
                Issue.record("\(path): a body over the limit was not refused")
                continue
            }
            #expect(status == .contentTooLarge)
            #expect(answer?.status == (worded ? .contentTooLarge : nil), "\(path)")
            if case .bytes(let body)? = answer?.body { #expect(String(decoding: body, as: UTF8.self).hasPrefix(#"{"why":"#)) }

            var slow = Self.machine()
            let (slowHead, slowFraming) = try Self.head("POST \(path) HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
            _ = slow.headReceived(slowHead, framing: slowFraming)
            _ = slow.admitted(router.admit(slowHead))
            guard case .fail(_, _, _, let late) = slow.deadlinePassed(.requestTimeout) else {
                Issue.record("\(path): a slow body was not refused")
                continue
            }
            #expect((late?.status == .requestTimeout) == worded)
        }
    }

    // MARK: Helpers

    static func machine() -> ConnectionStateMachine {
        ConnectionStateMachine(limits: HTTPServer.Configuration.Limits())
    }

    /// A head and its framing as the real parser makes them.
    static func head(_ raw: String) throws -> (HTTPRequestHead, HTTPRequestParser.Framing) {
        var parser = HTTPRequestParser()
        let bytes = Array(raw.utf8)
        var offset = 0
        let event = try bytes.withUnsafeBytes { try parser.next($0, at: &offset) }
        guard case .head(let head) = event else { throw ParseFailure() }
        return (head, parser.framing)
    }

    struct ParseFailure: Error {}
}

extension ConnectionStateMachine {
    /// A head arrives and the responder decides on it with `admission`.
    mutating func receive(
        _ raw: String, admission: HTTPAdmission = .accept(maxBodyBytes: nil), expecting: Step? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let (head, framing) = try ConnectionStateMachineTests.head(raw)
        expect(headReceived(head, framing: framing), .admit, sourceLocation: sourceLocation)
        let action = Step(admitted(admission))
        if let expecting { #expect(action == expecting, sourceLocation: sourceLocation) }
    }
}

/// Checks that `action` is `step`; the machine's mutating calls cannot run inside `#expect`.
func expect(_ action: ConnectionStateMachine.Action, _ step: Step, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(Step(action) == step, sourceLocation: sourceLocation)
}

/// An action without the payloads that cannot be compared.
enum Step: Equatable {
    case none, admit, awaitAdmission, readNextRequest, pauseReading, shutDownWriting, close
    case readBody(limit: Int, expectedLength: Int?, sendContinue: Bool)
    case discardBody(limit: Int)
    case respond(keepAlive: Bool)
    case send(status: Int, keepAlive: Bool)
    case fail(status: Int)

    init(_ action: ConnectionStateMachine.Action) {
        switch action {
        case .none: self = .none
        case .admit: self = .admit
        case .awaitAdmission: self = .awaitAdmission
        case .readBody(let limit, let expectedLength, let sendContinue):
            self = .readBody(limit: limit, expectedLength: expectedLength, sendContinue: sendContinue)
        case .discardBody(let limit): self = .discardBody(limit: limit)
        case .respond(_, _, _, let keepAlive): self = .respond(keepAlive: keepAlive)
        case .send(let response, _, let keepAlive): self = .send(status: response.status.code, keepAlive: keepAlive)
        case .fail(let status, _, _, _): self = .fail(status: status.code)
        case .readNextRequest: self = .readNextRequest
        case .pauseReading: self = .pauseReading
        case .shutDownWriting: self = .shutDownWriting
        case .close: self = .close
        }
    }
}
