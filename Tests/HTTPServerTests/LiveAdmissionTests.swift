import Foundation
import TestSupport
import Testing

@testable import HTTPServer

/// What a client can make the server hold before it knows who the client is: admission decided by
/// a lookup before any body byte is read, a budget for the bodies in flight, and a limit of
/// connections per client address.
@Suite("Live admission and body budget")
struct LiveAdmissionTests {
    @Test func aKeyRefusedByALookupGetsItsAnswerInsteadOf100Continue() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send("POST /verified HTTP/1.1\r\nHost: t\r\nx-key: bad\r\nContent-Length: 4000000\r\nExpect: 100-continue\r\n\r\n")
        let response = try await client.readResponse()
        #expect(response.status == 401)
        #expect(response.text == "unknown key")
        // The body was never asked for, so the connection cannot be kept.
        #expect(response.closes)
        #expect(try await client.isClosedByServer())
        await server.stop()
    }

    @Test func aKeyAcceptedByALookupGets100ContinueThenItsAnswer() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send("POST /verified HTTP/1.1\r\nHost: t\r\nx-key: good\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        #expect(try await client.readResponse().status == 100)
        try await client.send("hello")
        #expect(try await client.readResponse().text == "5")
        await server.stop()
    }

    @Test func bytesThatCameWithTheHeadWaitForTheLookupThenAreRead() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        // Body and a pipelined request in the same packet as the head.
        try await client.send(
            "POST /verified HTTP/1.1\r\nHost: t\r\nx-key: good\r\nContent-Length: 5\r\n\r\nhelloGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await client.readResponse().text == "5")
        #expect(try await client.readResponse().text == "hello")
        // A refused one with a small body: the body is dropped and the connection kept.
        try await client.send(
            "POST /verified HTTP/1.1\r\nHost: t\r\nx-key: bad\r\nContent-Length: 5\r\n\r\nhelloGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await client.readResponse().status == 401)
        #expect(try await client.readResponse().text == "hello")
        await server.stop()
    }

    @Test func bodiesPastTheBudgetInFlightGet503UntilBytesAreGivenBack() async throws {
        let server = try TestServer { $0.limits.maxBodyBytesInFlight = 1 << 20 }
        var holder: RawClient? = try RawClient(port: server.port)
        try await holder?.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 700000\r\n\r\n" + String(repeating: "x", count: 1000))
        #expect(await eventually { server.server.bodyBudget.inUse == 700_000 })

        let refused = try RawClient(port: server.port)
        try await refused.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 700000\r\n\r\n")
        let answer = try await refused.readResponse()
        #expect(answer.status == 503)
        #expect(answer.header("Retry-After") == "1")
        #expect(answer.closes)
        // A request without a body is not held up by the budget.
        #expect(try await RawClient.exchange(port: server.port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").text == "hello")

        // The holder leaves: its share comes back, and the same body is read whole.
        holder = nil
        #expect(await eventually { server.server.bodyBudget.inUse == 0 })
        let body = String(repeating: "y", count: 700_000)
        let accepted = try await RawClient.exchange(port: server.port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 700000\r\n\r\n" + body)
        #expect(accepted.status == 200)
        #expect(accepted.body.count == 700_000)
        #expect(server.server.bodyBudget.inUse == 0, "a body handed to the responder no longer counts")
        await server.stop()
    }

    @Test func aChunkedBodyIsCountedAsItArrives() async throws {
        let server = try TestServer { $0.limits.maxBodyBytesInFlight = 1 << 20 }
        let client = try RawClient(port: server.port)
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = "40000\r\n" + String(repeating: "z", count: 0x40000) + "\r\n"
        // Five chunks of 256 KiB pass the 1 MiB budget; the server answers 503 and closes.
        for _ in 0..<5 {
            do { try await client.send(chunk) } catch { break }
        }
        let answer = try await client.readResponse()
        #expect(answer.status == 503)
        #expect(try await client.isClosedByServer())
        #expect(await eventually { server.server.bodyBudget.inUse == 0 })
        await server.stop()
    }

    @Test func connectionsPastTheLimitOfOneAddressGet503WhileOtherAddressesAreServed() async throws {
        // The header timeout out of the way, as in the connection-limit test beside it: under the
        // whole suite's load a client has sent its request more than 10 s after connecting.
        let server = try TestServer {
            $0.limits.maxConnectionsPerAddress = 2
            $0.timeouts.headerRead = .seconds(300)
        }
        var first: RawClient? = try RawClient(port: server.port, from: "127.0.0.2")
        let second = try RawClient(port: server.port, from: "127.0.0.2")
        for client in [first, second].compactMap({ $0 }) {
            try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await client.readResponse().text == "hello")
        }
        let third = try RawClient(port: server.port, from: "127.0.0.2")
        let refusal = try await third.readResponse()
        #expect(refusal.status == 503)
        #expect(refusal.header("Retry-After") == "1")
        #expect(try await third.isClosedByServer())
        // Another address has slots of its own.
        let other = try RawClient(port: server.port, from: "127.0.0.3")
        try await other.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await other.readResponse().text == "hello")
        // One of the first address's connections closes: its slot is free again.
        first = nil
        #expect(
            await eventually {
                guard let again = try? RawClient(port: server.port, from: "127.0.0.2") else { return false }
                try? await again.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                return (try? await again.readResponse().text) == "hello"
            })
        await server.stop()
    }
}
