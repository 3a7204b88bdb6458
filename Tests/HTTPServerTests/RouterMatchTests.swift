import TestSupport
import Testing

@testable import HTTPServer

/// A request is resolved once: the route admission matched travels with the request to dispatch.
@Suite("Router resolves once")
struct RouterMatchTests {
    @Test func dispatchUsesTheRouteAdmissionMatchedInsteadOfResolvingAgain() async throws {
        var router = Router()
        router.get("/a") { _, _ in .text(.ok, "a") }
        router.get("/b/{x}") { _, parameters in .text(.ok, "b \(parameters["x"] ?? "?")") }
        let head = HTTPRequestHead(method: .get, target: "/b/7")
        guard case .accept(_, let match) = router.admit(head) else {
            Issue.record("/b/7 was not admitted")
            return
        }
        #expect(match?.pattern == "/b/{x}")
        // The request's path now names another route: only a router that resolved it again would go there.
        let request = HTTPRequest(head: HTTPRequestHead(method: .get, target: "/a"), route: match)
        let answer = await router.respond(to: request)
        #expect(Self.text(answer) == "b 7")
        // Without a match (a caller that skips admission) the path is resolved as before.
        let resolved = await router.respond(to: HTTPRequest(head: HTTPRequestHead(method: .get, target: "/a")))
        #expect(Self.text(resolved) == "a")
    }

    static func text(_ response: HTTPResponse) -> String? {
        guard case .bytes(let bytes) = response.body else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func aLookupsAdmissionCarriesTheMatchToo() async throws {
        var router = Router()
        router.post("/k/{id}", maxBodyBytes: 9, verifyHead: { _, _ in nil }) { _, _ in .text(.ok, "") }
        guard case .pending(let decision) = router.admit(HTTPRequestHead(method: .post, target: "/k/1")) else {
            Issue.record("a route with a lookup did not wait for it")
            return
        }
        guard case .accept(let limit, let match) = await decision() else {
            Issue.record("the lookup refused")
            return
        }
        #expect(limit == 9)
        #expect(match?.pattern == "/k/{id}")
        #expect(match?.parameters["id"] == "1")
    }

    @Test func aLiveRequestReachesItsHandlerWithTheMatchAndHeadChecksStillRefuse() async throws {
        let server = try TestServer()
        let client = try RawClient(port: server.port)
        try await client.send("POST /matched/zed HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
        #expect(try await client.readResponse().text == "/matched/{name} zed")
        try await client.send("POST /matched/zed HTTP/1.1\r\nHost: t\r\nx-refuse: 1\r\nContent-Length: 2\r\n\r\nhi")
        #expect(try await client.readResponse().status == 403)
        try await client.send("GET /matched/zed HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await client.readResponse().status == 405)
        await server.stop()
    }
}
