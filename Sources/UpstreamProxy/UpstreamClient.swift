import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An upstream's answer, read whole.
struct UpstreamResponse: Sendable {
    let status: Int
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }
}

/// The HTTP client of one upstream: its own connection pool of the configured size, no redirects,
/// every call bounded by the generation's deadline. Transport failures come out classified: one
/// that happened before a connection existed is `unreachable` (the request was never sent, so
/// another upstream may take it); any later one is the member's 502, or 504 past the deadline.
///
/// The pool lives on an event loop of its own, where each answer is gathered too. On a group of
/// several loops, a call's answer would be gathered on one loop while its connection sat on
/// another (a hop between threads for each part), and a call made to stay on its connection's
/// loop would open a connection of its own whenever the idle one sat elsewhere.
final class UpstreamClient: Sendable {
    private let http: HTTPClient
    private let loop: MultiThreadedEventLoopGroup
    /// The largest answer read: by default four large images in base64, with room to spare.
    private let maxAnswerBytes: Int
    static let maxBodyBytes = 64 << 20

    init(poolSize: Int, maxAnswerBytes: Int = maxBodyBytes) {
        self.maxAnswerBytes = maxAnswerBytes
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: poolSize)
        // Fail at once when no connection can be made, rather than retrying until the deadline:
        // the route then tries its next upstream.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        http = HTTPClient(eventLoopGroup: loop, configuration: configuration)
    }

    /// One call, through the client's event-loop API: the answer is gathered on the pool's loop
    /// and handed over once, whole. (The async API starts a task of Swift's pool for each call and
    /// hops threads for its deadline and for each part of the body.) The call is never cancelled:
    /// once sent, the team pays for it, so its caller waits for its end.
    func send(
        _ method: String, _ url: String, headers: [(String, String)] = [], body: ByteBuffer? = nil,
        deadline: NIODeadline
    ) async throws(UpstreamFailure) -> UpstreamResponse {
        do {
            let request = try HTTPClient.Request(
                url: url, method: .init(rawValue: method), headers: HTTPHeaders(headers), body: body.map { .byteBuffer($0) })
            return try await http.execute(request: request, delegate: AnswerAccumulator(maxBytes: maxAnswerBytes), deadline: deadline)
                .futureResult.get()
        } catch {
            throw Self.classify(error)
        }
    }

    static func classify(_ error: any Error) -> UpstreamFailure {
        switch error {
        case is NIOConnectionError:
            return .unreachable
        case let error as IOError where error.errnoCode == ECONNREFUSED:
            return .unreachable
        case let error as ChannelError:
            if case .connectTimeout = error { return .unreachable }
            return .answered(UpstreamFailure.unreadable)
        case let error as HTTPClientError where error == .connectTimeout:
            return .unreachable
        case let error as HTTPClientError where error == .deadlineExceeded:
            return .answered(.timedOut)
        default:
            return .answered(UpstreamFailure.unreadable)
        }
    }

    func shutdown() async {
        try? await http.shutdown()
        try? await loop.shutdownGracefully()
    }
}

/// Gathers an answer into one array, sized from its `Content-Length` (up to 16 MiB ahead of its
/// bytes), so that each byte of a megabyte image is copied once: `ResponseAccumulator` grows a
/// buffer part by part, and the buffer would still have to be copied out into an array.
///
/// An error status's body is kept only up to `maxErrorBytes`: an error is a status and a sentence,
/// and a longer body is read to its end (for the status and the connection) but dropped, so the
/// answer comes with an empty body.
final class AnswerAccumulator: HTTPClientResponseDelegate {
    typealias Response = UpstreamResponse

    /// An answer longer than `maxBytes` (or none at all); the call is classified as unreadable.
    struct Unreadable: Error {}

    static let maxErrorBytes = 64 << 10

    private struct State {
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        /// Bytes received so far, those dropped included.
        var received = 0
        /// An error body past `maxErrorBytes`: the rest is not kept.
        var dropping = false
    }

    private let maxBytes: Int
    private let state = Mutex(State())

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let length = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
        guard length <= maxBytes else { return task.eventLoop.makeFailedFuture(Unreadable()) }
        state.withLock { state in
            state.head = head
            let ahead = Self.isError(head) ? Self.maxErrorBytes : 16 << 20
            state.body.reserveCapacity(min(max(length, 0), ahead))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let fits = state.withLock { state in
            guard buffer.readableBytes <= maxBytes - state.received else { return false }
            state.received += buffer.readableBytes
            if let head = state.head, Self.isError(head), state.received > Self.maxErrorBytes {
                state.dropping = true
                state.body = []
            }
            if !state.dropping { state.body.append(contentsOf: buffer.readableBytesView) }
            return true
        }
        return fits ? task.eventLoop.makeSucceededVoidFuture() : task.eventLoop.makeFailedFuture(Unreadable())
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> UpstreamResponse {
        let (head, body) = state.withLock { state in (state.head, state.body) }
        guard let head else { throw Unreadable() }
        return UpstreamResponse(status: Int(head.status.code), headers: head.headers.map { ($0.name, $0.value) }, body: body)
    }

    private static func isError(_ head: HTTPResponseHead) -> Bool {
        !(200..<300).contains(head.status.code)
    }
}
