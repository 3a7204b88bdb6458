public import GenerationCore
public import GuardedHTTP
import NIOCore

/// One configured upstream, with its own connection pool; renders the upstream's wire format
/// from the dialect-free request.
public final class UpstreamBackend: Sendable {
    public let upstream: Upstream
    private let client: UpstreamClient
    private let outputs: GuardedFetcher

    /// - Parameter outputPolicy: the addresses an image URL in the upstream's answer may lead to,
    ///   unless it is on the upstream's own origin.
    public init(_ upstream: Upstream, outputPolicy: AddressPolicy = AddressPolicy()) {
        self.upstream = upstream
        client = UpstreamClient(poolSize: upstream.poolSize)
        outputs = GuardedFetcher(policy: outputPolicy, timeout: .seconds(30), subject: "the upstream's image URL")
    }

    public func generate(_ request: GenerationRequest) async throws(UpstreamFailure) -> GenerationResult {
        let deadline = NIODeadline.now() + .nanoseconds(upstream.deadline.components.seconds * 1_000_000_000
            + upstream.deadline.components.attoseconds / 1_000_000_000)
        switch upstream.dialect {
        case .segmind: return try await SegmindUpstream(upstream: upstream, client: client).generate(request, deadline: deadline)
        case .modelslab: return try await ModelsLabUpstream(upstream: upstream, client: client, outputs: outputs).generate(request, deadline: deadline)
        }
    }

    /// Closes the pool's connections; the application calls it once the server has drained.
    public func shutdown() async {
        await client.shutdown()
    }
}
