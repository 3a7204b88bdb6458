import Foundation
import TestSupport
import Testing

@testable import HTTPServer

/// Many connections at once, and shutdown while work is in flight.
@Suite("Live load and shutdown", .serialized)
struct LiveLoadTests {
    @Test func aThousandConcurrentKeepAliveConnectionsAreAllAnswered() async throws {
        // The server holds a quarter of the open-file limit in connections, and this process holds
        // the other end of each: as `sdgate serve` does, the soft limit goes up to the hard one.
        DescriptorLimit.raiseToHardLimit()
        // A new connection must send its first request within the header timeout (10 s). Under the
        // whole suite's load on two cores, opening and writing to a thousand connections in turn
        // has taken longer, and the last ones were closed: this test is about concurrency, so its
        // timeouts are out of the way, and so is the limit per address (every client is 127.0.0.1).
        let server = try TestServer {
            $0.timeouts.headerRead = .seconds(300)
            $0.timeouts.keepAliveIdle = .seconds(300)
            $0.limits.maxConnectionsPerAddress = 0
        }
        let count = 1000
        #expect(server.server.maxConnections >= count, "the server holds a quarter of the open-file limit in connections")
        let clients = try (0..<count).map { _ in try RawClient(port: server.port) }
        // Two rounds on the same connections: every one is answered, and every one is kept alive.
        // All requests go out before any answer is read, so all 1000 are in flight at once; the
        // answers are then read one at a time (a thousand threads blocked in recv would exhaust the
        // Dispatch thread pool the server itself runs on).
        for round in 1...2 {
            for (index, client) in clients.enumerated() {
                try await client.send("GET /items/\(index)/status HTTP/1.1\r\nHost: t\r\n\r\n")
            }
            for (index, client) in clients.enumerated() {
                let response = try await client.readResponse()
                #expect(response.text == "item \(index)", "round \(round)")
                #expect(!response.closes)
            }
            #expect(server.server.connectionCount == count)
        }
        await server.stop()
        #expect(server.server.connectionCount == 0)
    }

    @Test func shutdownFinishesTheRequestInFlightAndClosesIdleConnections() async throws {
        let server = try TestServer()
        let busy = try RawClient(port: server.port)
        let idle = try RawClient(port: server.port)
        try await idle.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await idle.readResponse().status == 200)
        try await busy.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { server.probe.slowRequestsStarted.load(ordering: .relaxed) == 1 })

        let stopped = Task { await server.server.shutdown(gracePeriod: .seconds(30)) }
        // The idle connection is closed, and no new connection is accepted...
        #expect(try await idle.isClosedByServer())
        #expect(await eventually { (try? RawClient(port: server.port)) == nil })
        // ...while the request in flight is still answered, completely, and then closed.
        server.probe.openGate()
        let response = try await busy.readResponse()
        #expect(response.text == "finally")
        #expect(response.closes)
        await stopped.value
        #expect(server.server.connectionCount == 0)
    }

    @Test func shutdownClosesWhatIsLeftAfterTheGracePeriod() async throws {
        let server = try TestServer()
        let busy = try RawClient(port: server.port)
        try await busy.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { server.probe.slowRequestsStarted.load(ordering: .relaxed) == 1 })
        await server.server.shutdown(gracePeriod: .milliseconds(200))
        #expect(server.server.connectionCount == 0)
        #expect(try await busy.isClosedByServer())
        #expect(server.probe.cancelledHandlers.load(ordering: .relaxed) == 1)
    }
}
