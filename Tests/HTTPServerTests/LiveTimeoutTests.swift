import Foundation
import TestSupport
import Testing

@testable import HTTPServer

/// Timeouts and per-connection limits on a live server. The timeouts are configured short; each
/// test waits for what the server does, bounded by the read timeout, and never sleeps.
@Suite("Live timeouts and limits")
struct LiveTimeoutTests {
    @Test func aClientSendingItsHeadOneByteAtATimeIsCutOffWhileOthersAreServed() async throws {
        let server = try TestServer { $0.timeouts.headerRead = .seconds(1) }
        let slow = try RawClient(port: server.port)
        let request = Array("GET /hello HTTP/1.1\r\nHost: t\r\nX-Padding: \(String(repeating: "p", count: 100))\r\n\r\n".utf8)
        var sent = 0
        var answered = 0
        // One byte every 100 ms: far too slow to finish the head within a second.
        while sent < request.count {
            do {
                try await slow.send([request[sent]])
            } catch {
                break  // the server has closed the connection
            }
            sent += 1
            // Meanwhile other clients get their answers at once. The first check comes right after
            // the first byte, so it falls within the slow client's second even on a loaded machine,
            // whose sleeps run long.
            if sent % 3 == 1 {
                #expect(try await RawClient.exchange(port: server.port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").text == "hello")
                answered += 1
            }
            if sent == 12 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let response = try await slow.readResponse()
        #expect(response.status == 408)
        #expect(response.closes)
        #expect(try await slow.isClosedByServer())
        // Others were served while the slow client held its connection. (When exactly the slow
        // one is cut off is ConnectionDeadline's business, tested there with a clock of its own.)
        #expect(answered >= 1)
        await server.stop()
    }

    @Test func aBodyThatStopsArrivingIs408() async throws {
        let server = try TestServer { $0.timeouts.bodyIdle = .milliseconds(300) }
        let client = try RawClient(port: server.port)
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        let response = try await client.readResponse()
        #expect(response.status == 408)
        #expect(try await client.isClosedByServer())
        await server.stop()
    }

    @Test func anIdleKeptAliveConnectionIsClosedQuietly() async throws {
        let server = try TestServer { $0.timeouts.keepAliveIdle = .milliseconds(300) }
        let client = try RawClient(port: server.port)
        try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await client.readResponse().status == 200)
        // No 408 for a connection that was between requests: just the close.
        #expect(try await client.isClosedByServer())
        #expect(await eventually { server.server.connectionCount == 0 })
        await server.stop()
    }

    @Test func theLastAllowedRequestOnAConnectionSaysClose() async throws {
        let server = try TestServer { $0.limits.maxRequestsPerConnection = 3 }
        let client = try RawClient(port: server.port)
        try await client.send(String(repeating: "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", count: 4))
        #expect(try await !client.readResponse().closes)
        #expect(try await !client.readResponse().closes)
        #expect(try await client.readResponse().closes)
        #expect(try await client.isClosedByServer())
        await server.stop()
    }

    @Test func pastTheConnectionLimitClientsWaitUntilOneCloses() async throws {
        // Each connection sends its request a while after it connects: under the whole suite's load
        // on two cores that has taken longer than the header timeout (10 s), and the server rightly
        // closed the connection. This test is about the connection limit, so that timeout is out of the way.
        let server = try TestServer {
            $0.limits.maxConnections = 2
            $0.timeouts.headerRead = .seconds(300)
        }
        let first = try RawClient(port: server.port)
        let second = try RawClient(port: server.port)
        for client in [first, second] {
            try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await client.readResponse().status == 200)
        }
        // The third connects (the kernel's backlog takes it) but is not accepted yet.
        let third = try RawClient(port: server.port, receiveTimeout: .milliseconds(300))
        try await third.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        await #expect(throws: RawClient.Failure.self) { try await third.readResponse() }
        #expect(server.server.connectionCount == 2)
        // One closes: the third is accepted and answered.
        try await first.send("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(try await first.readResponse().closes)
        third.setReceiveTimeout(.seconds(10))
        #expect(try await third.readResponse().text == "hello")
        await server.stop()
    }

    @Test func aClientThatDoesNotReadCannotMakeTheServerBuffer() async throws {
        let server = try TestServer { $0.limits.outputHighWaterMark = 64 * 1024 }
        let total = 64 << 20
        let client = try RawClient(port: server.port)
        try await client.send("GET /stream/\(total) HTTP/1.1\r\nHost: t\r\n\r\n")
        // The producer runs until the socket buffers and the high-water mark are full, then waits.
        var settled = server.probe.streamedBytes.load(ordering: .relaxed)
        let stopped = await eventually {
            let now = server.probe.streamedBytes.load(ordering: .relaxed)
            defer { settled = now }
            return now > 0 && now == settled
        }
        #expect(stopped)
        #expect(settled < 16 << 20, "the producer got \(settled) bytes ahead of a client that reads nothing")
        let finishedEarly = server.probe.streamFinished.load(ordering: .relaxed)
        #expect(!finishedEarly)
        // Once the client reads, everything arrives.
        let response = try await client.readResponse()
        #expect(response.body.count == total)
        let finished = server.probe.streamFinished.load(ordering: .relaxed)
        #expect(finished)
        await server.stop()
    }

    @Test func aClientThatLeavesMidStreamStopsTheProducer() async throws {
        let server = try TestServer()
        var client: RawClient? = try RawClient(port: server.port)
        try await client?.send("GET /stream/\(256 << 20) HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { server.probe.streamedBytes.load(ordering: .relaxed) > 0 })
        client = nil  // closes the socket with the answer half sent
        #expect(await eventually { server.probe.streamsAborted.load(ordering: .relaxed) == 1 })
        #expect(await eventually { server.server.connectionCount == 0 })
        await server.stop()
    }

    @Test func aClientThatIsGoneCancelsItsHandler() async throws {
        let server = try TestServer()
        var client: RawClient? = try RawClient(port: server.port)
        try await client?.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { server.probe.slowRequestsStarted.load(ordering: .relaxed) == 1 })
        // A reset, as a crashed or killed client leaves: there is no one to answer.
        client?.resetOnClose()
        client = nil
        #expect(await eventually { server.probe.cancelledHandlers.load(ordering: .relaxed) == 1 })
        #expect(await eventually { server.server.connectionCount == 0 })
        server.probe.openGate()
        await server.stop()
    }

    /// RFC 9112 §9.6: a client may close its sending side once its request is complete and still
    /// read the answer; the half-close is no sign that it left.
    @Test func aClientThatHalfClosesAfterACompleteRequestGetsItsAnswer() async throws {
        let server = try TestServer { $0.eventLoops = 1 }
        let client = try RawClient(port: server.port)
        try await client.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { server.probe.slowRequestsStarted.load(ordering: .relaxed) == 1 })
        client.finishSending()
        // The end of input was ready on the one loop before this later connection's request, so
        // once that is answered the loop has seen the half-close.
        #expect(try await RawClient.exchange(port: server.port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").text == "hello")
        #expect(server.probe.cancelledHandlers.load(ordering: .relaxed) == 0)
        server.probe.openGate()
        let response = try await client.readResponse()
        #expect(response.text == "finally")
        #expect(response.closes)
        #expect(server.probe.cancelledHandlers.load(ordering: .relaxed) == 0)
        #expect(try await client.isClosedByServer())
        await server.stop()
    }

    @Test func aBodySlowerThanTheMinimumRateIs408AndClosed() async throws {
        let server = try TestServer {
            $0.timeouts.minBodyRate = 1000
            $0.timeouts.bodyIdle = .milliseconds(500)
        }
        let client = try RawClient(port: server.port)
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        // 10 bytes every 100 ms: never idle for 500 ms, but a tenth of the minimum rate, so it
        // falls the 500 ms of slack behind after about 0.56 s. The answer must come while the
        // client still sends (not once it stops and goes idle); fifty rounds are five seconds.
        var rounds = 0
        while !client.hasInput(), rounds < 50 {
            try await client.send(Array(repeating: UInt8(ascii: "x"), count: 10))
            try await Task.sleep(for: .milliseconds(100))
            rounds += 1
        }
        #expect(client.hasInput(), "no answer while the body trickled in for \(rounds) rounds")
        let response = try await client.readResponse()
        #expect(response.status == 408)
        #expect(response.closes)
        #expect(try await client.isClosedByServer())
        await server.stop()
    }

    @Test func aBodyAtTheMinimumRateIsReadWhole() async throws {
        let server = try TestServer {
            $0.timeouts.minBodyRate = 10
            $0.timeouts.bodyIdle = .seconds(30)
        }
        let client = try RawClient(port: server.port)
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\n\r\n")
        // 20 bytes every 100 ms: twenty times the minimum rate. The margin and the 30 s of slack
        // (also the longest pause allowed between two pieces) keep a loaded machine, whose sleeps
        // run long, from making it slower than that: with every suite running at once on two cores
        // a pause of 5 s happened (the body may take up to 50 s).
        for _ in 0..<10 {
            try await client.send(Array(repeating: UInt8(ascii: "x"), count: 20))
            try await Task.sleep(for: .milliseconds(100))
        }
        let response = try await client.readResponse()
        #expect(response.status == 200)
        #expect(response.body.count == 200)
        await server.stop()
    }
}

@Suite("Connection deadlines")
struct ConnectionDeadlineTests {
    static var timeouts: HTTPServer.Configuration.Timeouts {
        var timeouts = HTTPServer.Configuration.Timeouts()
        timeouts.headerRead = .seconds(10)
        timeouts.bodyIdle = .seconds(30)
        timeouts.keepAliveIdle = .seconds(60)
        timeouts.writeIdle = .seconds(20)
        // The idle deadlines alone; the minimum rate has tests of its own.
        timeouts.minBodyRate = 0
        return timeouts
    }

    let start = ContinuousClock.now

    @Test func aNewConnectionHasTheHeaderTimeoutForItsFirstByte() {
        let deadline = ConnectionDeadline(timeouts: Self.timeouts, now: start)
        #expect(deadline.expired(at: start + .seconds(9.9)) == nil)
        #expect(deadline.expired(at: start + .seconds(10)) == .close)
    }

    @Test func progressDoesNotExtendTheHeadDeadline() {
        var deadline = ConnectionDeadline(timeouts: Self.timeouts, now: start)
        deadline.enter(.readingHead, at: start)
        for second in 1...9 { deadline.progress(at: start + .seconds(second)) }
        #expect(deadline.expired(at: start + .seconds(10)) == .requestTimeout)
    }

    @Test func progressExtendsTheBodyAndWriteDeadlines() {
        var deadline = ConnectionDeadline(timeouts: Self.timeouts, now: start)
        deadline.enter(.readingBody, at: start)
        deadline.progress(at: start + .seconds(25))
        #expect(deadline.expired(at: start + .seconds(54)) == nil)
        #expect(deadline.expired(at: start + .seconds(55)) == .requestTimeout)

        deadline.enter(.writingBlocked, at: start)
        deadline.progress(at: start + .seconds(15))
        #expect(deadline.expired(at: start + .seconds(34)) == nil)
        #expect(deadline.expired(at: start + .seconds(35)) == .close)
    }

    /// A `100 Continue` that the client is slow to read (or that fills the socket's buffer behind
    /// pipelined answers) leaves the request under its reading deadlines: the body still has to
    /// come in time. It once put the connection under the write deadline, which each body byte
    /// renewed, and then under none once written, holding its share of the body budget for good.
    @Test func aContinueWaitingToBeWrittenLeavesTheBodyDeadline() {
        var deadline = ConnectionDeadline(timeouts: Self.timeouts, now: start)
        deadline.enter(.readingHead, at: start)
        deadline.enter(.readingBody, at: start + .seconds(1))
        deadline.writeBlocked(at: start + .seconds(2), progressed: true, answering: false)
        deadline.progress(at: start + .seconds(20), bytes: 1)
        deadline.writeBlocked(at: start + .seconds(29), progressed: false, answering: false)
        #expect(deadline.activity == .readingBody)
        #expect(deadline.expired(at: start + .seconds(49)) == nil)
        #expect(deadline.expired(at: start + .seconds(50)) == .requestTimeout)
        deadline.writeFlushed(at: start + .seconds(40))
        #expect(deadline.activity == .readingBody)
        #expect(deadline.expired(at: start + .seconds(50)) == .requestTimeout)
    }

    /// An answer's write: blocked, it is under `writeIdle`, renewed by each write that sends
    /// something; once written, the connection is answering again, without a deadline. The same
    /// for an answer sent early, while the request was still read (a refusal from its head).
    @Test func anAnswerWaitingToBeWrittenIsUnderTheWriteDeadline() {
        var deadline = ConnectionDeadline(timeouts: Self.timeouts, now: start)
        deadline.enter(.responding, at: start)
        deadline.writeBlocked(at: start, progressed: false, answering: true)
        deadline.writeBlocked(at: start + .seconds(15), progressed: true, answering: true)
        deadline.writeBlocked(at: start + .seconds(30), progressed: false, answering: true)
        #expect(deadline.expired(at: start + .seconds(34)) == nil)
        #expect(deadline.expired(at: start + .seconds(35)) == .close)
        deadline.writeFlushed(at: start + .seconds(31))
        #expect(deadline.activity == .responding && deadline.expired(at: start + .seconds(100)) == nil)

        var early = ConnectionDeadline(timeouts: Self.timeouts, now: start)
        early.enter(.readingBody, at: start)
        early.writeBlocked(at: start + .seconds(5), progressed: false, answering: true)
        #expect(early.expired(at: start + .seconds(24)) == nil)
        #expect(early.expired(at: start + .seconds(25)) == .close)
    }

    @Test func aRespondingConnectionHasNoDeadlineOfItsOwn() {
        var deadline = ConnectionDeadline(timeouts: Self.timeouts, now: start)
        deadline.enter(.responding, at: start)
        #expect(deadline.expired(at: start + .seconds(100_000)) == nil)
    }

    @Test func betweenRequestsTheKeepAliveTimeoutApplies() {
        var deadline = ConnectionDeadline(timeouts: Self.timeouts, now: start)
        deadline.enter(.waitingForRequest, at: start)
        #expect(deadline.expired(at: start + .seconds(59)) == nil)
        #expect(deadline.expired(at: start + .seconds(60)) == .close)
    }

    @Test func aBodyBelowTheMinimumRateExpiresOnceItFallsBodyIdleBehind() {
        var timeouts = Self.timeouts
        timeouts.minBodyRate = 1000
        var deadline = ConnectionDeadline(timeouts: timeouts, now: start)
        deadline.enter(.readingBody, at: start)
        // 10 bytes a second: never idle, but the rate allows a body of 10t bytes until 30 s + 10t ms.
        for second in 1...30 { deadline.progress(at: start + .seconds(second), bytes: 10) }
        #expect(deadline.expired(at: start + .milliseconds(30_250)) == nil)
        #expect(deadline.expired(at: start + .milliseconds(30_350)) == .requestTimeout)
    }

    @Test func aBodyAtTheMinimumRateHasOnlyTheIdleDeadline() {
        var timeouts = Self.timeouts
        timeouts.minBodyRate = 1000
        var deadline = ConnectionDeadline(timeouts: timeouts, now: start)
        deadline.enter(.readingBody, at: start)
        for second in 1...100 { deadline.progress(at: start + .seconds(second), bytes: 1000) }
        #expect(deadline.expired(at: start + .seconds(129)) == nil)
        #expect(deadline.expired(at: start + .seconds(130)) == .requestTimeout)
    }

    @Test func aWholeRequestHasItsDeadlineWhateverItsRate() {
        var timeouts = Self.timeouts
        timeouts.minBodyRate = 1000
        timeouts.requestRead = .seconds(300)
        var deadline = ConnectionDeadline(timeouts: timeouts, now: start)
        deadline.enter(.readingHead, at: start)
        deadline.enter(.readingBody, at: start + .seconds(1))
        for second in 2...299 { deadline.progress(at: start + .seconds(second), bytes: 1 << 20) }
        #expect(deadline.expired(at: start + .milliseconds(299_900)) == nil)
        #expect(deadline.expired(at: start + .seconds(300)) == .requestTimeout)
    }

    @Test func lingeringEndsAfterTwoSeconds() {
        var deadline = ConnectionDeadline(timeouts: Self.timeouts, now: start)
        deadline.enter(.lingering, at: start)
        #expect(deadline.expired(at: start + .seconds(2)) == .close)
    }
}
