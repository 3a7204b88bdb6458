package import AsyncHTTPClient
public import Foundation
import GenerationCore

/// Every fetch the gateway makes of a URL it did not configure itself (a member's image URL, a
/// webhook, an image URL in an upstream's answer) goes through here, under one set of rules: http
/// or https only; the host resolved once and its address checked against the policy; the
/// connection pinned to that very address, so a name that resolves differently a moment later (DNS
/// rebinding) cannot slip past; redirects followed by hand, each hop checked again; size and time
/// capped.
public struct GuardedFetcher: Sendable {
    public var policy: AddressPolicy
    /// For the whole fetch, redirects included.
    public var timeout: Duration
    public var maxRedirects: Int
    /// What the URL is, as refusals name it: "the image URL", "the webhook URL".
    public var subject: String
    /// Where the bytes of bodies being received are counted, with those of other fetches; nil:
    /// each is bounded by its own `maxBytes` only.
    public var budget: FetchBudget?
    public var resolver: HostResolver

    public init(
        policy: AddressPolicy = AddressPolicy(), timeout: Duration = .seconds(15), maxRedirects: Int = 3, subject: String = "the URL",
        budget: FetchBudget? = nil, resolver: HostResolver = .system
    ) {
        self.policy = policy
        self.timeout = timeout
        self.maxRedirects = maxRedirects
        self.subject = subject
        self.budget = budget
        self.resolver = resolver
    }

    /// Why a fetch was refused or failed, in words a client can act on.
    public struct Refusal: Error, Sendable, Equatable {
        public let message: String
        /// Refused for the budget's sake, not the URL's: a retry may pass.
        public var busy = false

        public init(message: String) {
            self.message = message
        }
    }

    /// A URL's host, and the checked address to connect to in its place.
    public struct Target: Sendable {
        public let host: String
        public let address: String
    }

    /// Resolves `url`'s host, by `deadline` (by default within `timeout`), and checks it under the policy.
    public func target(of url: URL, before deadline: ContinuousClock.Instant? = nil) async throws(Refusal) -> Target {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw Refusal(message: "\(subject) is not an http or https URL")
        }
        guard let host = url.host, !host.isEmpty else { throw Refusal(message: "\(subject) has no host") }
        // The URL parser takes any number for a port; the HTTP client's socket address traps on one
        // past 65535.
        if let port = url.port, !(1...65_535).contains(port) { throw Refusal(message: "\(subject)'s port must be 1 to 65535") }
        let addresses: [String]
        switch await resolver.addresses(of: host, before: deadline ?? .now + timeout) {
        case .addresses(let found): addresses = found
        case .timedOut: throw Refusal(message: "resolving \(subject)'s host \(host) took too long")
        case .busy:
            var busy = Refusal(message: "the gateway is resolving too many hosts at once; retry shortly")
            busy.busy = true
            throw busy
        }
        guard !addresses.isEmpty else { throw Refusal(message: "\(subject)'s host \(host) does not resolve") }
        guard let address = addresses.first(where: policy.allows) else {
            throw Refusal(message: "\(subject)'s host \(host) is not a public address")
        }
        return Target(host: host, address: address)
    }

    /// A client whose connections go to `target`'s checked address, while TLS still verifies its
    /// host name; redirects are never followed by it.
    package static func withClient<Return>(
        pinnedTo target: Target, isolation: isolated (any Actor)? = #isolation,
        _ body: (HTTPClient) async throws -> Return
    ) async throws -> Return {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(10)))
        configuration.dnsOverride = [target.host: target.address]
        return try await HTTPClient.withHTTPClient(configuration: configuration, body)
    }

    /// The body at `url` (a 200), at most `maxBytes`.
    public func get(_ url: URL, maxBytes: Int) async throws(Refusal) -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        var current = url
        for _ in 0...maxRedirects {
            switch try await getOnce(current, maxBytes: maxBytes, deadline: deadline) {
            case .body(let bytes):
                return bytes
            case .redirect(let location):
                guard let next = URL(string: location, relativeTo: current)?.absoluteURL else {
                    throw Refusal(message: "\(subject) redirects to an invalid location")
                }
                current = next
            }
        }
        throw Refusal(message: "\(subject) redirects more than \(maxRedirects) times")
    }

    private enum Outcome: Sendable {
        case body([UInt8])
        case redirect(String)
    }

    private func getOnce(_ url: URL, maxBytes: Int, deadline: ContinuousClock.Instant) async throws(Refusal) -> Outcome {
        let target = try await target(of: url, before: deadline)
        let remaining = deadline - .now
        guard remaining > .zero else { throw Refusal(message: "fetching \(subject) took too long") }
        do {
            return try await withinDeadline(deadline) { try await get(url, pinnedTo: target, maxBytes: maxBytes, within: remaining) }
        } catch let refusal as Refusal {
            throw refusal
        } catch let error where error is DeadlinePassed || (error as? HTTPClientError) == .deadlineExceeded {
            throw Refusal(message: "fetching \(subject) took too long")
        } catch {
            throw Refusal(message: "\(subject) could not be fetched")
        }
    }

    private func get(_ url: URL, pinnedTo target: Target, maxBytes: Int, within remaining: Duration) async throws -> Outcome {
        try await Self.withClient(pinnedTo: target) { client in
            let response = try await client.execute(HTTPClientRequest(url: url.absoluteString), timeout: .nanoseconds(remaining.wholeNanoseconds))
            if (300..<400).contains(response.status.code), let location = response.headers.first(name: "location") {
                return .redirect(location)
            }
            guard response.status.code == 200 else { throw Refusal(message: "\(subject) answered HTTP \(response.status.code)") }
            let tooLarge = Refusal(message: "the file at \(subject) is larger than \(maxBytes) bytes")
            if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxBytes { throw tooLarge }
            var bytes: [UInt8] = []
            var taken = 0
            defer { budget?.giveBack(taken) }
            for try await part in response.body {
                guard bytes.count + part.readableBytes <= maxBytes else { throw tooLarge }
                if let budget {
                    guard budget.take(part.readableBytes) else {
                        var busy = Refusal(message: "the gateway is receiving too many images at once; retry shortly")
                        busy.busy = true
                        throw busy
                    }
                    taken += part.readableBytes
                }
                bytes += part.readableBytesView
            }
            return .body(bytes)
        }
    }
}
