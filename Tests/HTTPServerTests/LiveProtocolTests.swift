import Foundation
import TestSupport
import Testing

@testable import HTTPServer

/// The server over real sockets, driven byte by byte: keep-alive, pipelining, 100-continue,
/// HTTP/1.0, HEAD, routing refusals, limits and every framing attack.
@Suite("Live protocol")
struct LiveProtocolTests {
    @Test func keepAliveServesManyRequestsOnOneConnection() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        for _ in 0..<5 {
            try await client.send("GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(!response.closes)
            #expect(response.header("Date") != nil)
            #expect(response.header("Server") == "sdgate")
        }
        await server.stop()
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        // The slow one first: the quick ones behind it must wait for it, not overtake it.
        try await client.send(
            "GET /slow HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nonePOST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\nGET /items/3/status HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        #expect(await eventually { server.probe.slowRequestsStarted.load(ordering: .relaxed) == 1 })
        server.probe.openGate()
        #expect(try await client.readResponse().text == "finally")
        #expect(try await client.readResponse().text == "one")
        #expect(try await client.readResponse().text == "two")
        #expect(try await client.readResponse().text == "item 3")
        await server.stop()
    }

    /// Each framing attack from the parser fixtures, sent to a live server: a 4xx/5xx answer with
    /// `Connection: close`, the connection closed, and the server still serving others.
    @Test(
        "framing attacks are answered and the connection closed",
        arguments: [
            ("conflicting-content-length", 400), ("content-length-and-chunked", 400), ("chunked-then-gzip", 400),
            ("transfer-encoding-gzip-chunked", 501), ("obsolete-line-folding", 400), ("bare-cr-in-value", 400),
            ("bare-lf-line-end", 400), ("space-before-colon", 400), ("invalid-name-token", 400), ("chunk-size-not-hex", 400),
            ("chunk-missing-crlf", 400), ("version-http2", 505), ("missing-host", 400), ("double-host", 400),
            ("transfer-encoding-http10", 400), ("nul-in-value", 400),
        ])
    func framingAttack(fixture: String, status: Int) async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send(try ParserFixtureTests.raw(fixture))
        let response = try await client.readResponse()
        #expect(response.status == status)
        #expect(response.closes)
        #expect(try await client.isClosedByServer())
        #expect(try await RawClient.exchange(port: server.port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").status == 200)
        await server.stop()
    }

    @Test func aGoodRequestBeforeABadOneIsAnswered() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send(try ParserFixtureTests.raw("error-after-good-request"))
        #expect(try await client.readResponse().status == 404)
        let second = try await client.readResponse()
        #expect(second.status == 400)
        #expect(second.text.contains("conflicting Content-Length"))
        #expect(try await client.isClosedByServer())
        await server.stop()
    }

    @Test func expectContinueGetsContinueThenTheAnswer() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        #expect(try await client.readResponse().status == 100)
        try await client.send("hello")
        let response = try await client.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "hello")
        await server.stop()
    }

    @Test func expectContinueIsRefusedEarlyWhenTheHeadDecides() async throws {
        let server = try TestServer()
        for (head, status) in [("POST /nowhere", 404), ("PUT /hello", 405), ("POST /small", 413)] {
            let client = try RawClient(port: server.port)
            try await client.send("\(head) HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == status, "\(head)")
            #expect(response.closes, "the body that was held back must not be mistaken for a request")
        }
        let client = try RawClient(port: server.port)
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nExpect: something-else\r\n\r\nx")
        #expect(try await client.readResponse().status == 417)
        await server.stop()
    }

    @Test func aRejectedRequestsSmallBodyIsDroppedAndTheConnectionKept() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send("POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello worldGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        let refused = try await client.readResponse()
        #expect(refused.status == 404)
        #expect(!refused.closes)
        #expect(try await client.readResponse().text == "hello")
        await server.stop()
    }

    @Test func routingAnswers404And405WithAllow() async throws {
        let server = try TestServer()
        let missing = try await RawClient.exchange(port: server.port, "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(missing.status == 404)
        #expect(missing.header("Content-Type") == "application/json")
        let wrongMethod = try await RawClient.exchange(port: server.port, "DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("Allow") == "GET, HEAD")
        let captured = try await RawClient.exchange(port: server.port, "GET /items/a%20b/status?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(captured.text == "item a b")
        let absolute = try await RawClient.exchange(port: server.port, "GET http://t/hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(absolute.text == "hello")
        await server.stop()
    }

    @Test func http10ClosesUnlessAskedToKeepAlive() async throws {
        let server = try TestServer()
        let closing = try RawClient(port: server.port)
        try await closing.send("GET /hello HTTP/1.0\r\n\r\n")
        let first = try await closing.readResponse()
        #expect(first.status == 200)
        #expect(first.closes)
        #expect(try await closing.isClosedByServer())

        let keeping = try RawClient(port: server.port)
        for _ in 0..<2 {
            try await keeping.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let response = try await keeping.readResponse()
            #expect(response.header("Connection") == "keep-alive")
        }
        await server.stop()
    }

    @Test func connectionCloseIsHonoured() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(try await client.readResponse().closes)
        #expect(try await client.isClosedByServer())
        await server.stop()
    }

    @Test func headHasTheHeadersOfGetWithoutTheBody() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try await client.readResponse(toHead: true)
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "5")
        // The next bytes are the next answer, so HEAD sent no body.
        #expect(try await client.readResponse().text == "hello")
        await server.stop()
    }

    @Test func chunkedRequestBodyWithTrailersReachesTheHandler() async throws {
        let server = try TestServer()
        let response = try await RawClient.exchange(
            port: server.port,
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nChecksum: 42\r\n\r\n")
        #expect(response.text == "hello world")
        #expect(response.header("x-trailer-Checksum") == "42")
        await server.stop()
    }

    @Test func bodiesOverTheRouteLimitAre413BeforeAndWhileReading() async throws {
        let server = try TestServer()
        // Declared too large: answered before the body is sent.
        let declared = try RawClient(port: server.port)
        try await declared.send("POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n")
        let early = try await declared.readResponse()
        #expect(early.status == 413)
        #expect(early.closes)
        // Chunked: found out while reading.
        let chunked = try await RawClient.exchange(
            port: server.port,
            "POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\nx\r\n0\r\n\r\n")
        #expect(chunked.status == 413)
        // At the limit: fine.
        let fits = try await RawClient.exchange(port: server.port, "POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\n0123456789abcdef")
        #expect(fits.text == "16")
        await server.stop()
    }

    @Test func oversizedRequestLineAndHeadersAre414And431() async throws {
        let server = try TestServer {
            $0.limits.parser.maxRequestLineBytes = 100; $0.limits.parser.maxHeaderBytes = 200
        }
        let longTarget = try await RawClient.exchange(port: server.port, "GET /\(String(repeating: "a", count: 200)) HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(longTarget.status == 414)
        let bigHeaders = try await RawClient.exchange(
            port: server.port, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "b", count: 300))\r\n\r\n")
        #expect(bigHeaders.status == 431)
        #expect(bigHeaders.closes)
        await server.stop()
    }

    @Test func streamedBodiesAreChunkedOrSized() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send("GET /stream/200000 HTTP/1.1\r\nHost: t\r\n\r\nGET /sized-stream HTTP/1.1\r\nHost: t\r\n\r\n")
        let chunked = try await client.readResponse()
        #expect(chunked.header("Transfer-Encoding") == "chunked")
        #expect(chunked.body.count == 200_000)
        let sized = try await client.readResponse()
        #expect(sized.header("Content-Length") == "10")
        #expect(sized.text == "0123456789")
        // To an HTTP/1.0 client an unknown length is delimited by closing.
        let old = try RawClient(port: server.port)
        try await old.send("GET /stream/1000 HTTP/1.0\r\n\r\n")
        let delimited = try await old.readResponse()
        #expect(delimited.body.count == 1000)
        await server.stop()
    }

    @Test func listensOnIPv6() async throws {
        let server = try TestServer { $0.host = "::1" }
        #expect(server.server.localAddress?.isIPv6 == true)
        let result = try await Command.run("curl", ["-sS", "-g", "http://[::1]:\(server.port)/hello"])
        #expect(result.output == "hello")
        await server.stop()
    }
}
