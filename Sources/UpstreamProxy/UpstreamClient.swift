import AsyncHTTPClient
import NIOCore
import NIOPosix

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
final class UpstreamClient: Sendable {
    private let http: HTTPClient
    /// The largest answer read: four large images in base64, with room to spare.
    static let maxBodyBytes = 64 << 20

    init(poolSize: Int) {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: poolSize)
        // Fail at once when no connection can be made, rather than retrying until the deadline:
        // the route then tries its next upstream.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func send(
        _ method: String, _ url: String, headers: [(String, String)] = [], body: ByteBuffer? = nil,
        deadline: NIODeadline
    ) async throws(UpstreamFailure) -> UpstreamResponse {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        do {
            let response = try await http.execute(request, deadline: deadline)
            let body = try await response.body.collect(upTo: Self.maxBodyBytes)
            return UpstreamResponse(
                status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                body: Array(body.readableBytesView))
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
    }
}
