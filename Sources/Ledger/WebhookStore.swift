import Foundation

/// Webhook deliveries (ModelsLab v3 `webhook`, and the operator's alerts), kept in the ledger's
/// database so that a delivery outlives a restart and every attempt is on record.
///
/// A delivery is PENDING until an attempt succeeds (DELIVERED) or its retries run out (FAILED).
/// `claimDueWebhook` takes one due delivery for an attempt and makes it due again only after a
/// lease, so that a gateway that dies mid-attempt leaves it to be sent again (receivers tell a
/// repeat by its `webhook-id`, the delivery's id).
public protocol WebhookStore: Sendable {
    /// The key's signing secret, `whsec_` and base64 of 24 random bytes, made on first use.
    func webhookSecret(keyID: String) async throws(LedgerError) -> String
    func enqueueWebhook(_ webhook: NewWebhook) async throws(LedgerError) -> WebhookDelivery
    /// Takes a pending delivery due at or before `now`, atomically across replicas; it is due again
    /// at `leaseUntil` unless its attempt is recorded before. The operator's come first; members'
    /// are taken in turns by key (the key whose last claim is the oldest, or that never had one,
    /// first), each key's due longest first, so that a key whose receiver never answers holds
    /// another key's webhook back by at most one attempt per slot.
    func claimDueWebhook(now: Timestamp, leaseUntil: Timestamp) async throws(LedgerError) -> WebhookDelivery?
    /// Records an attempt and what follows it.
    func recordWebhookAttempt(_ attempt: WebhookAttempt, then next: WebhookNext) async throws(LedgerError)
    func webhookDeliveries(jobID: String) async throws(LedgerError) -> [WebhookDelivery]
    func webhookAttempts(deliveryID: String) async throws(LedgerError) -> [WebhookAttempt]
    /// Forgets the deliveries that ended before `cutoff`, with their attempts.
    func purgeWebhooks(endedBefore cutoff: Timestamp) async throws(LedgerError)
}

public struct NewWebhook: Sendable {
    public var keyID: String
    public var jobID: String
    public var url: String
    /// The JSON body, signed and sent as it is on every attempt.
    public var body: [UInt8]
    public var recipient: WebhookRecipient

    public init(keyID: String, jobID: String, url: String, body: [UInt8]) {
        self.keyID = keyID
        self.jobID = jobID
        self.url = url
        self.body = body
        recipient = .member
    }

    /// An alert for the operator, at one of the operator's URLs: no key, no job.
    public static func toOperator(url: String, body: [UInt8]) -> NewWebhook {
        var webhook = NewWebhook(keyID: "", jobID: "", url: url, body: body)
        webhook.recipient = .operator
        return webhook
    }
}

/// Whom a delivery is for, which decides its signing secret and the addresses it may go to.
public enum WebhookRecipient: String, Sendable, Equatable {
    /// A member's job webhook: signed with the key's secret, to the addresses members may name.
    case member
    /// The operator's alert: signed with the operator's configured secret, to the operator's own URLs.
    case `operator`
}

public enum WebhookState: String, Sendable, Equatable {
    case pending = "PENDING"
    case delivered = "DELIVERED"
    case failed = "FAILED"
}

public struct WebhookDelivery: Sendable, Equatable {
    /// `msg_` and a UUID: the `webhook-id` of every attempt.
    public let id: String
    public let keyID: String
    public let jobID: String
    public let url: String
    public let body: [UInt8]
    public let state: WebhookState
    public let attempts: Int
    public let nextAttemptAt: Timestamp?
    public let createdAt: Timestamp
    public let endedAt: Timestamp?
    public let recipient: WebhookRecipient
}

/// One try at delivering: the receiver's HTTP status, or why there was none.
public struct WebhookAttempt: Sendable, Equatable {
    public var deliveryID: String
    /// 1 for the first attempt.
    public var number: Int
    public var at: Timestamp
    public var status: Int?
    public var error: String?
    public var durationMilliseconds: Int64

    public init(deliveryID: String, number: Int, at: Timestamp, status: Int?, error: String?, durationMilliseconds: Int64) {
        self.deliveryID = deliveryID
        self.number = number
        self.at = at
        self.status = status
        self.error = error
        self.durationMilliseconds = durationMilliseconds
    }
}

/// What follows an attempt.
public enum WebhookNext: Sendable, Equatable {
    case delivered
    case retry(at: Timestamp)
    /// Its retries ran out.
    case failed

    /// The delivery's state, next attempt and end once this follows `attempt`.
    func columns(after attempt: WebhookAttempt) -> (state: String, nextAttemptAt: Timestamp?, endedAt: Timestamp?) {
        switch self {
        case .delivered: (WebhookState.delivered.rawValue, nil, attempt.at)
        case .retry(let at): (WebhookState.pending.rawValue, at, nil)
        case .failed: (WebhookState.failed.rawValue, nil, attempt.at)
        }
    }
}

extension APIKeySecret {
    /// A Standard Webhooks signing secret: `whsec_` and standard base64 of 24 random bytes.
    static func makeWebhookSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<24).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "whsec_" + Data(bytes).base64EncodedString()
    }
}
