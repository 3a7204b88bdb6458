import AsyncHTTPClient
public import Foundation

/// Fetches image URLs under the address rules: the host is resolved once, the address is checked
/// against the policy, and the connection is pinned to that very address (so a name that resolves
/// differently a moment later — DNS rebinding — cannot slip past). Redirects are followed by hand,
/// each hop checked again; size and time are capped.
public struct URLImageFetcher: ImageFetcher {
    public var policy: AddressPolicy
    /// For the whole fetch, redirects included.
    public var timeout: Duration
    public var maxRedirects: Int

    public init(policy: AddressPolicy = AddressPolicy(), timeout: Duration = .seconds(15), maxRedirects: Int = 3) {
        self.policy = policy
        self.timeout = timeout
        self.maxRedirects = maxRedirects
    }

    public func fetch(_ url: URL, maxBytes: Int) async throws(ImageProblem) -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        var current = url
        for _ in 0...maxRedirects {
            switch try await fetchOnce(current, maxBytes: maxBytes, deadline: deadline) {
            case .body(let bytes):
                return bytes
            case .redirect(let location):
                guard let next = URL(string: location, relativeTo: current)?.absoluteURL else {
                    throw ImageProblem("the image URL redirects to an invalid location")
                }
                current = next
            }
        }
        throw ImageProblem("the image URL redirects more than \(maxRedirects) times")
    }

    private enum Outcome {
        case body([UInt8])
        case redirect(String)
    }

    private func fetchOnce(_ url: URL, maxBytes: Int, deadline: ContinuousClock.Instant) async throws(ImageProblem) -> Outcome {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw ImageProblem("only http and https URLs are fetched")
        }
        guard let host = url.host, !host.isEmpty else { throw ImageProblem("the image URL has no host") }
        let addresses = await HostResolver.addresses(of: host)
        guard !addresses.isEmpty else { throw ImageProblem("the image URL's host \(host) does not resolve") }
        guard let address = addresses.first(where: policy.allows) else {
            throw ImageProblem("the image URL's host \(host) is not a public address")
        }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(5), read: .seconds(10)))
        // Connect to the address just checked, while TLS still verifies the host name.
        configuration.dnsOverride = [host: address]
        let remaining = deadline - .now
        guard remaining > .zero else { throw ImageProblem("fetching the image URL took too long") }
        do {
            return try await HTTPClient.withHTTPClient(configuration: configuration) { client in
                let response = try await client.execute(HTTPClientRequest(url: url.absoluteString),
                                                        timeout: .nanoseconds(Int64(remaining.components.seconds) * 1_000_000_000
                                                            + remaining.components.attoseconds / 1_000_000_000))
                if (300..<400).contains(Int(response.status.code)), let location = response.headers.first(name: "location") {
                    return .redirect(location)
                }
                guard response.status.code == 200 else { throw ImageProblem("the image URL answered HTTP \(response.status.code)") }
                if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxBytes {
                    throw ImageProblem("the image at the URL is larger than \(maxBytes) bytes")
                }
                var bytes: [UInt8] = []
                for try await part in response.body {
                    guard bytes.count + part.readableBytes <= maxBytes else { throw ImageProblem("the image at the URL is larger than \(maxBytes) bytes") }
                    bytes += part.readableBytesView
                }
                return .body(bytes)
            }
        } catch let problem as ImageProblem {
            throw problem
        } catch {
            throw ImageProblem("the image URL could not be fetched")
        }
    }
}
