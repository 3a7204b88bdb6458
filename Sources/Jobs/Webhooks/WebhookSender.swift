import AsyncHTTPClient
public import Foundation
import GenerationCore
public import GuardedHTTP
public import Ledger

/// One attempt at a webhook: a POST of the delivery's JSON body, signed per Standard Webhooks, to
/// an address the policy allows, through `GuardedFetcher`'s checks and pinning; redirects are not
/// followed (a 3xx is a failed attempt), and the attempt is capped in time.
///
/// A member's webhook URL comes from a member, so it must lead to an address `policy` allows (by
/// default only public ones). The operator's alert URLs come from the operator's own configuration,
/// never from a request: they may lead anywhere, loopback and private networks included (an
/// alert receiver beside the gateway), still pinned to the addresses checked and never redirected.
public struct WebhookSender: Sendable {
    private let fetcher: GuardedFetcher
    private let operatorFetcher: GuardedFetcher

    public init(policy: AddressPolicy = AddressPolicy(), timeout: Duration = .seconds(10), resolver: HostResolver = .system) {
        fetcher = GuardedFetcher(policy: policy, timeout: timeout, maxRedirects: 0, subject: "webhook: the URL", resolver: resolver)
        operatorFetcher = GuardedFetcher(
            policy: AddressPolicy(allowPrivateAddresses: true), timeout: timeout, maxRedirects: 0, subject: "alert: the URL",
            resolver: resolver)
    }

    /// Why webhooks cannot go to `url`, in words for the client that gave it (`busy`: not the
    /// URL's fault, a retry may pass); nil when they can.
    public func problem(with url: String) async -> GuardedFetcher.Refusal? {
        switch await target(of: url, through: fetcher) {
        case .success: nil
        case .failure(let refusal): refusal
        }
    }

    public func send(_ delivery: WebhookDelivery, secret: String, now: Date = Date()) async -> WebhookDispatcher.Attempt {
        let pinned: GuardedFetcher.Target
        let chosen = delivery.recipient == .operator ? operatorFetcher : fetcher
        // A member's URL is looked up as that member's, as it was when the call was made: its
        // name's servers may never answer, and the member's few places bound how many of the
        // gateway's lookups it can hold up (the operator's are the gateway's own).
        let owner = delivery.recipient == .operator ? nil : delivery.keyID
        switch await HostResolver.$owner.withValue(owner, operation: { await target(of: delivery.url, through: chosen) }) {
        case .success(let checked): pinned = checked
        case .failure(let refusal): return WebhookDispatcher.Attempt(status: nil, error: refusal.message)
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
        let deadline = ContinuousClock.now + chosen.timeout
        do {
            return try await GuardedFetcher.withClient(pinnedTo: pinned) { client in
                let response = try await client.execute(request, timeout: .nanoseconds(chosen.timeout.wholeNanoseconds))
                // Read (and drop) a little of the answer, so the connection ends cleanly; the status
                // is the receiver's answer, however slowly the rest comes.
                _ = try? await withinDeadline(deadline) { try await response.body.collect(upTo: 64 << 10) }
                return WebhookDispatcher.Attempt(status: Int(response.status.code), error: nil)
            }
        } catch {
            return WebhookDispatcher.Attempt(status: nil, error: "the webhook URL could not be reached: \(Self.describe(error))")
        }
    }

    private func target(of text: String, through fetcher: GuardedFetcher) async -> Result<GuardedFetcher.Target, GuardedFetcher.Refusal> {
        guard let url = URL(string: text) else { return .failure(GuardedFetcher.Refusal(message: "webhook: expected an http(s) URL")) }
        do {
            return .success(try await fetcher.target(of: url))
        } catch {
            return .failure(error)
        }
    }

    /// A short reason for the attempt record, without the client's details.
    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return "timed out"
        }
        return String(describing: error).prefix(200).description
    }
}
