import Foundation
import Synchronization

@testable import HTTPServer

/// A real server on 127.0.0.1 and a free port, with routes made for testing the server itself.
final class TestServer: Sendable {
    let server: HTTPServer
    let port: Int
    let probe: Probe

    /// What the routes observed, for tests to wait on instead of sleeping.
    final class Probe: Sendable {
        let slowRequestsStarted = Atomic<Int>(0)
        let cancelledHandlers = Atomic<Int>(0)
        let streamedBytes = Atomic<Int>(0)
        let streamFinished = Atomic<Bool>(false)
        let streamsAborted = Atomic<Int>(0)
        private let gate = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

        /// Lets every `/slow` request (waiting or future) answer.
        func openGate() {
            let waiters = gate.withLock { state in
                state.open = true
                defer { state.waiters = [] }
                return state.waiters
            }
            waiters.forEach { $0.resume() }
        }

        func waitForGate() async {
            await withCheckedContinuation { continuation in
                let open = gate.withLock { state in
                    if !state.open { state.waiters.append(continuation) }
                    return state.open
                }
                if open { continuation.resume() }
            }
        }
    }

    init(_ configure: (inout HTTPServer.Configuration) -> Void = { _ in }) throws {
        var configuration = HTTPServer.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.timeouts.tick = .milliseconds(50)
        configure(&configuration)
        let probe = Probe()
        server = try HTTPServer(configuration: configuration, responder: Self.router(probe))
        port = try server.start().port
        self.probe = probe
    }

    func stop() async {
        await server.shutdown(gracePeriod: .seconds(5))
    }

    static func router(_ probe: Probe) -> Router {
        var router = Router()
        router.get("/hello") { _, _ in .text(.ok, "hello") }
        router.post("/echo", maxBodyBytes: 4 << 20) { request, _ in
            var headers: HTTPHeaders = ["Content-Type": request.headers["Content-Type"] ?? "application/octet-stream"]
            for trailer in request.trailers { headers.add("x-trailer-\(trailer.name)", trailer.value) }
            return HTTPResponse(status: .ok, headers: headers, bytes: request.body)
        }
        router.post("/small", maxBodyBytes: 16) { request, _ in .text(.ok, "\(request.body.count)") }
        // A key checked from the head by a lookup that suspends, as a database's would.
        router.post(
            "/verified", maxBodyBytes: 4 << 20,
            verifyHead: { head, _ in
                try? await Task.sleep(for: .milliseconds(20))
                return head.headers["x-key"] == "good" ? nil : .text(HTTPStatus(code: 401), "unknown key")
            }
        ) { request, _ in .text(.ok, "\(request.body.count)") }
        router.get("/whoami") { request, _ in .text(.ok, "\(request.remoteAddress?.port ?? -1)") }
        router.get("/items/{id}/status") { _, parameters in .text(.ok, "item \(parameters["id"] ?? "?")") }
        // Says which route admission matched and handed on with the request (none: resolved again).
        router.post("/matched/{name}", checkHead: { head, _ in head.headers["x-refuse"] == nil ? nil : .text(HTTPStatus(code: 403), "refused") }) {
            request, parameters in .text(.ok, "\(request.route?.pattern ?? "none") \(parameters["name"] ?? "?")")
        }
        router.get("/slow") { _, _ in
            probe.slowRequestsStarted.add(1, ordering: .relaxed)
            await withTaskCancellationHandler {
                await probe.waitForGate()
            } onCancel: {
                probe.cancelledHandlers.add(1, ordering: .relaxed)
            }
            return .text(.ok, "finally")
        }
        router.get("/stream/{bytes}") { _, parameters in
            let total = Int(parameters["bytes"] ?? "0") ?? 0
            let chunk = [UInt8](repeating: UInt8(ascii: "z"), count: 64 * 1024)
            return HTTPResponse(
                body: .stream(length: nil) { writer in
                    var sent = 0
                    while sent < total {
                        let part = Array(chunk.prefix(total - sent))
                        do {
                            try await writer.write(part)
                        } catch {
                            probe.streamsAborted.add(1, ordering: .relaxed)
                            throw error
                        }
                        sent += part.count
                        probe.streamedBytes.store(sent, ordering: .relaxed)
                    }
                    probe.streamFinished.store(true, ordering: .relaxed)
                })
        }
        router.get("/sized-stream") { _, _ in
            HTTPResponse(
                body: .stream(length: 10) { writer in
                    try await writer.write(Array("01234".utf8))
                    try await writer.write(Array("56789".utf8))
                })
        }
        return router
    }
}
