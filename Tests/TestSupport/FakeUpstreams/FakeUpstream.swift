import Foundation
package import HTTPServer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How a fake upstream answers from now on: as the contract says, or in one of the ways real
/// services fail.
package enum UpstreamMisbehaviour: Sendable, Equatable {
    /// Announce a whole body, send half of it, close the connection.
    case cutMidBody
    /// Answer nothing until told to behave again (or shut down).
    case stall
    /// Answer nothing until told to behave again, or until `answerOne` lets one through; then
    /// answer as the contract says (a slow upstream, paced by the test).
    case wait
    /// HTTP 500.
    case serverError
    /// HTTP 200 with a body that is not the contract's.
    case garbage
    /// Refuse the team's key, whatever it is.
    case rejectKey
    /// The team's account there is out of credits.
    case outOfCredits
    /// Too many requests; retry after 7 seconds.
    case rateLimited
    /// A JSON object of some three million one-letter strings (12 MB), with this status.
    case manySmallValues(status: Int)
}

/// A request a fake upstream received.
package struct ReceivedRequest: Sendable {
    package let method: String
    package let path: String
    package let headers: HTTPHeaders
    package let body: [UInt8]
    /// The client's address and port: requests from one address came over one connection.
    package let peer: String

    /// The body as a JSON object (empty if it is not one).
    package var json: [String: Any] {
        ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]) ?? [:]
    }
}

/// What both fakes share: a real HTTP server on 127.0.0.1, the requests it received, and the
/// misbehaviour it was told to show. The dialect-specific answers live in the subclasses.
package class FakeUpstream: @unchecked Sendable {
    // Safety: the mutable state is inside `state`, a Mutex; `server` is set once in `start`.
    private struct State {
        var misbehaviour: UpstreamMisbehaviour?
        var received: [ReceivedRequest] = []
        var stalled: [CheckedContinuation<Void, Never>] = []
        var imagesAnswered: Int?
    }

    private let state = Mutex(State())
    private var server: HTTPServer?
    package private(set) var port = 0
    /// The team's key this upstream accepts.
    package let key: String

    init(acceptingKey key: String) {
        self.key = key
    }

    package var baseURL: String { "http://127.0.0.1:\(port)" }

    func start(_ router: Router) throws {
        var configuration = HTTPServer.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.eventLoops = 1
        let server = try HTTPServer(configuration: configuration, responder: router)
        port = try server.start().port
        self.server = server
    }

    /// Misbehave as told from now on; nil behaves again (and ends the stalls).
    package func misbehave(_ misbehaviour: UpstreamMisbehaviour?) {
        let released = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.misbehaviour = misbehaviour
            guard misbehaviour != .stall && misbehaviour != .wait else { return [] }
            defer { state.stalled = [] }
            return state.stalled
        }
        for continuation in released { continuation.resume() }
    }

    package var received: [ReceivedRequest] { state.withLock { $0.received } }

    /// Lets the longest-waiting request of a `wait` through; false if none waits.
    @discardableResult
    package func answerOne() -> Bool {
        let first = state.withLock { state in state.stalled.isEmpty ? nil : state.stalled.removeFirst() }
        first?.resume()
        return first != nil
    }

    /// Answers with this many images whatever the request asks for, fewer or more (nil: as many
    /// as asked).
    package var imagesAnswered: Int? {
        get { state.withLock { $0.imagesAnswered } }
        set { state.withLock { $0.imagesAnswered = newValue } }
    }

    /// The images to answer for a request that asks for `samples`.
    func images(for samples: Int) -> Int { imagesAnswered ?? samples }

    /// Requests now waiting in a stall.
    package var stalledCount: Int { state.withLock { $0.stalled.count } }

    /// Stops listening: from now on connections to its port are refused.
    package func refuseConnections() async {
        misbehave(nil)
        await server?.shutdown(gracePeriod: .milliseconds(100))
    }

    package func shutdown() async {
        await refuseConnections()
    }

    /// Stops listening while an answer is still to be sent: returns once the port refuses
    /// connections, so that the answer that follows reaches its client (closing its connection),
    /// and the client's next call cannot connect.
    func goDown() async {
        let server = server
        Task { await server?.shutdown(gracePeriod: .seconds(30)) }
        _ = await eventually {
            guard let probe = try? connectToLoopback(port: port) else { return true }
            close(probe)
            return false
        }
    }

    /// Records the request, then either the answer its misbehaviour calls for, or nil: behave.
    func intercept(_ request: HTTPRequest) async -> HTTPResponse? {
        let misbehaviour = state.withLock { state in
            state.received.append(
                ReceivedRequest(
                    method: request.method.rawValue, path: String(request.path),
                    headers: request.headers, body: request.body, peer: request.remoteAddress?.description ?? ""))
            return state.misbehaviour
        }
        switch misbehaviour {
        case nil, .rejectKey, .outOfCredits, .rateLimited:
            return nil
        case .stall, .wait:
            await withCheckedContinuation { continuation in
                let stillStalling = state.withLock { state in
                    guard state.misbehaviour == misbehaviour else { return false }
                    state.stalled.append(continuation)
                    return true
                }
                if !stillStalling { continuation.resume() }
            }
            return misbehaviour == .wait ? nil : HTTPResponse.text(.serviceUnavailable, "stall ended")
        case .cutMidBody:
            let body = Array(repeating: UInt8(ascii: "x"), count: 4096)
            return HTTPResponse(
                status: .ok, headers: ["Content-Type": "application/json"],
                body: .stream(length: body.count * 2) { writer in
                    try await writer.write(body)
                    throw CancellationError()
                })
        case .serverError:
            return HTTPResponse.text(HTTPStatus(code: 500), "Internal Server Error")
        case .garbage:
            return HTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], bytes: Array("<html>upstream maintenance</html>".utf8))
        case .manySmallValues(let status):
            return HTTPResponse(status: HTTPStatus(code: status), headers: ["Content-Type": "application/json"], bytes: Self.manySmallValues)
        }
    }

    /// `{"status":"error","error":["a","a",…]}`, 12 MB: a decoder that builds every value holds
    /// many times that while it reads it. Made by the standard library's own repetition: joining
    /// three million arrays in a debug build took longer, under the whole suite, than the
    /// gateway's deadline for the answer it was made for.
    static let manySmallValues: [UInt8] = Array(
        (#"{"status":"error","error":["# + String(repeating: #""a","#, count: 3_000_000) + #""a"]}"#).utf8)

    /// The misbehaviour that the dialect answers in its own words.
    var refusal: UpstreamMisbehaviour? {
        state.withLock { $0.misbehaviour }.flatMap { [.rejectKey, .outOfCredits, .rateLimited].contains($0) ? $0 : nil }
    }

    static func json(_ object: [String: Any], status: HTTPStatus = .ok, headers: HTTPHeaders = [:]) -> HTTPResponse {
        .json(
            status, Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()),
            headers: headers)
    }

    /// A number sent as a number or as a string, as clients do.
    static func number(_ value: Any?) -> Double? {
        if let number = value as? NSNumber { return number.doubleValue }
        if let text = value as? String { return Double(text) }
        return nil
    }
}
