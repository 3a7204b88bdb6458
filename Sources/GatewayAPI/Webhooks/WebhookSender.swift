import AsyncHTTPClient
public import Foundation
public import Jobs
public import Ledger

/// One attempt at a webhook: a POST of the delivery's JSON body, signed per Standard Webhooks, to
/// an address the policy allows. As for image URLs, the host is resolved once, its address checked
/// and the connection pinned to it; redirects are not followed (a 3xx is a failed attempt), and the
/// attempt is capped in time.
public struct WebhookSender: Sendable {
    public var policy: AddressPolicy
    public var timeout: Duration

    public init(policy: AddressPolicy = AddressPolicy(), timeout: Duration = .seconds(10)) {
        self.policy = policy
        self.timeout = timeout
    }

    /// Why webhooks cannot go to `url`, in words for the client that gave it; nil when they can.
    public func problem(with url: String) async -> String? {
        switch await address(for: url) {
        case .success: nil
        case .failure(let problem): problem.message
        }
    }

    public func send(_ delivery: WebhookDelivery, secret: String, now: Date = Date()) async -> WebhookDispatcher.Attempt {
        let host: String, pinned: String
        switch await address(for: delivery.url) {
        case .success(let resolved): (host, pinned) = resolved
        case .failure(let problem): return WebhookDispatcher.Attempt(status: nil, error: problem.message)
        }
        let timestamp = Int64(now.timeIntervalSince1970)
        guard let signature = WebhookSignature.sign(id: delivery.id, timestamp: timestamp, body: delivery.body, secret: secret) else {
            return WebhookDispatcher.Attempt(status: nil, error: "the key's signing secret is malformed")
        }
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "sdgate-webhooks")
        request.headers.add(name: "webhook-id", value: delivery.id)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(name: "webhook-signature", value: signature)
        request.body = .bytes(delivery.body)
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5)))
        // Connect to the address just checked, while TLS still verifies the host name.
        configuration.dnsOverride = [host: pinned]
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        do {
            return try await HTTPClient.withHTTPClient(configuration: configuration) { client in
                let response = try await client.execute(request, timeout: .nanoseconds(nanoseconds))
                // Read (and drop) a little of the answer, so the connection ends cleanly.
                _ = try? await response.body.collect(upTo: 64 << 10)
                return WebhookDispatcher.Attempt(status: Int(response.status.code), error: nil)
            }
        } catch {
            return WebhookDispatcher.Attempt(status: nil, error: "the webhook URL could not be reached: \(Self.describe(error))")
        }
    }

    private struct Problem: Error {
        let message: String
    }

    /// The URL's host and the address to connect to, under the policy.
    private func address(for text: String) async -> Result<(host: String, address: String), Problem> {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty else {
            return .failure(Problem(message: "webhook: expected an http(s) URL"))
        }
        let addresses = await HostResolver.addresses(of: host)
        guard !addresses.isEmpty else { return .failure(Problem(message: "webhook: the host \(host) does not resolve")) }
        guard let address = addresses.first(where: policy.allows) else {
            return .failure(Problem(message: "webhook: the host \(host) is not a public address"))
        }
        return .success((host, address))
    }

    /// A short reason for the attempt record, without the client's details.
    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return "timed out"
        }
        return String(describing: error).prefix(200).description
    }
}
