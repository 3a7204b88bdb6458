import Foundation
package import GenerationCore

/// Why one upstream did not produce a result: either it could not be reached at all, so nothing
/// was sent and the route may try its next upstream, or it answered (or may have started to), and
/// the member gets `error`.
package enum UpstreamFailure: Error, Sendable, Equatable {
    /// Connection refused, or not established: the upstream never saw the request.
    case unreachable
    case answered(InferenceError)

    /// The member's view of an upstream's HTTP status other than 2xx. The member's own key was
    /// fine, so the upstream's refusals of the gateway's key or account are gateway errors (502,
    /// 503), never a 401 or 406 of the member's.
    static func status(_ status: Int, retryAfter: String?, message: String?) -> InferenceError {
        switch status {
        case 401: rejectedKey
        case 402, 406: outOfCredits
        case 429: rateLimited(retryAfter: retryAfter)
        case 500...: .failed("the upstream failed (HTTP \(status))")
        default: .failed("the upstream refused the request (HTTP \(status))" + (message.map { ": \($0.prefix(300))" } ?? ""))
        }
    }

    /// How the failure is counted in the metrics: `unreachable`, `timeout`, `rejected_key`,
    /// `out_of_credits`, `rate_limited`, `busy`, `unsupported` or `failed` (an error status, a broken
    /// or unreadable answer, a connection cut mid-answer).
    package var kind: String {
        switch self {
        case .unreachable: "unreachable"
        case .answered(.timedOut): "timeout"
        case .answered(let error) where error == Self.rejectedKey: "rejected_key"
        case .answered(let error) where error == Self.outOfCredits: "out_of_credits"
        case .answered(.upstreamRefused): "rate_limited"
        case .answered(.busy): "busy"
        case .answered(.unsupported): "unsupported"
        case .answered(.failed): "failed"
        }
    }

    /// This failure, of a call made once the upstream accepted the generation (a poll, a download):
    /// one that could not connect no longer means that nothing was sent, since the paid work had
    /// begun, so it is an answered failure, which a route does not pass to its next upstream.
    var afterAcceptance: UpstreamFailure {
        self == .unreachable ? .answered(.failed("the upstream could not be reached after it accepted the generation")) : self
    }

    static let rejectedKey = InferenceError.upstreamRefused("the upstream rejected the gateway's key")
    /// 503: the request may succeed once the team tops its upstream account up.
    static let outOfCredits = InferenceError.upstreamRefused("the upstream account is out of credits", retryAfter: .seconds(60))
    static let unreadable = InferenceError.failed("the upstream's answer could not be read")

    static func rateLimited(retryAfter: String?) -> InferenceError {
        // The upstream's number, within an hour: it is passed on to members as their Retry-After.
        let seconds = retryAfter.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }.map { min(max(1, $0), 3600) } ?? 1
        return .upstreamRefused("the upstream is limiting the gateway's request rate; retry later", retryAfter: .seconds(seconds))
    }
}
