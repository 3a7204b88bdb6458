import Synchronization
import Testing

@testable import HTTPServer

/// The router names every request and tells its observer of every answer: those refused from the
/// head (no route, wrong method, a head check) and those a handler gave.
@Suite("Router observer and request ids")
struct RouterObserverTests {
    final class Heard: RequestObserver {
        let answers = Mutex<[(method: HTTPMethod, route: String, status: Int, id: String)]>([])

        func answered(_ method: HTTPMethod, route: String, status: HTTPStatus, duration: Duration, requestID: String) {
            answers.withLock { $0.append((method, route, status.code, requestID)) }
        }
    }

    static func router(_ heard: Heard) -> Router {
        var router = Router()
        router.observer = heard
        // The handler answers with the id it was given.
        router.get("/jobs/{id}") { request, _ in .text(.ok, request.head.headers["x-request-id"] ?? "none") }
        router.post("/locked", checkHead: { _, _ in .text(.unauthorized, "no") }) { _, _ in .text(.ok, "") }
        router.get("/health", fromHead: { head in .text(.ok, "alive: \(head.path)") })
        return router
    }

    @Test func aRouteAnsweredFromTheHeadIsAnsweredAtAdmissionNamedAndHeard() async throws {
        let heard = Heard()
        let router = Self.router(heard)
        for method in [HTTPMethod.get, .head] {
            guard case .reject(let answer) = router.admit(HTTPRequestHead(method: method, target: "/health")) else {
                Issue.record("\(method) /health was handed to a task")
                continue
            }
            #expect(answer.status == .ok && RouterMatchTests.text(answer) == "alive: /health")
            #expect(answer.headers["x-request-id"] != nil)
        }
        // A caller that skips admission gets the same answer from `respond`.
        let direct = await router.respond(to: HTTPRequest(head: HTTPRequestHead(method: .get, target: "/health")))
        #expect(RouterMatchTests.text(direct) == "alive: /health")
        #expect(heard.answers.withLock { $0.map(\.route) } == ["/health", "/health", "/health"])
    }

    @Test func aHandledRequestIsNamedByItsPatternAndItsHandlerSeesTheGatewaysIDNotTheClients() async throws {
        let heard = Heard()
        let router = Self.router(heard)
        let head = HTTPRequestHead(method: .get, target: "/jobs/secret-job-id", headers: ["x-request-id": "from-the-client"])
        guard case .accept(_, let match) = router.admit(head) else {
            Issue.record("/jobs/… was not admitted")
            return
        }
        let answer = await router.respond(to: HTTPRequest(head: head, route: match))
        let id = try #require(answer.headers["x-request-id"])
        #expect(id.count == 16 && id.allSatisfy(\.isHexDigit), "\(id)")
        #expect(RouterMatchTests.text(answer) == id)
        let answers = heard.answers.withLock { $0 }
        #expect(answers.count == 1)
        #expect(answers.first?.route == "/jobs/{id}" && answers.first?.status == 200 && answers.first?.id == id)
    }

    @Test func refusalsAtTheHeadAreHeardAndCarryAnID() async throws {
        let heard = Heard()
        let router = Self.router(heard)
        var ids: [String] = []
        for (method, target) in [(HTTPMethod.get, "/nowhere/at/all"), (.delete, "/jobs/1"), (.post, "/locked")] {
            guard case .reject(let answer) = router.admit(HTTPRequestHead(method: method, target: target)) else {
                Issue.record("\(method) \(target) was admitted")
                continue
            }
            ids.append(try #require(answer.headers["x-request-id"]))
        }
        let answers = heard.answers.withLock { $0 }
        #expect(answers.map(\.route) == ["unmatched", "unmatched", "/locked"])
        #expect(answers.map(\.status) == [404, 405, 401])
        #expect(answers.map(\.id) == ids && Set(ids).count == 3)
    }
}
