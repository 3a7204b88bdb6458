/// Webhook deliveries and their attempts in memory.
extension InMemoryLedger: WebhookStore {
    struct StoredDelivery: Sendable {
        var delivery: WebhookDelivery
        var attempts: [WebhookAttempt] = []
        /// Made in this order, for deliveries made in the same millisecond.
        let sequence: Int
        /// The turn of its last claim (`claimDueWebhook`).
        var claimTurn: Int64?
    }

    public func webhookSecret(keyID: String) async throws(LedgerError) -> String {
        let candidate = APIKeySecret.makeWebhookSecret()
        return try locked { (state: inout InMemoryState) throws(LedgerError) -> String in
            guard state.keys[keyID] != nil else { throw .unknownKey(keyID) }
            if let secret = state.webhookSecrets[keyID] { return secret }
            state.webhookSecrets[keyID] = candidate
            return candidate
        }
    }

    public func enqueueWebhook(_ webhook: NewWebhook) async throws(LedgerError) -> WebhookDelivery {
        let createdAt = now()
        return try locked { state in state.queue(webhook, at: createdAt) }
    }

    public func claimDueWebhook(now: Timestamp, leaseUntil: Timestamp) async throws(LedgerError) -> WebhookDelivery? {
        try locked { state in
            var lastTurn: [String: Int64] = [:]
            for stored in state.webhooks.values {
                if let turn = stored.claimTurn { lastTurn[stored.delivery.keyID] = max(lastTurn[stored.delivery.keyID] ?? turn, turn) }
            }
            // The operator's first, then the key whose last turn is the oldest (none: first), then its due longest.
            func order(_ stored: StoredDelivery) -> (Int, Int64, Timestamp, Int) {
                (
                    stored.delivery.recipient == .operator ? 0 : 1, lastTurn[stored.delivery.keyID] ?? .min,
                    stored.delivery.nextAttemptAt ?? .max, stored.sequence
                )
            }
            let due = state.webhooks.values.filter { $0.delivery.state == .pending && ($0.delivery.nextAttemptAt ?? .max) <= now }
            guard let next = due.min(by: { order($0) < order($1) }) else { return nil }
            let claimed = next.delivery.with(state: .pending, attempts: next.delivery.attempts, nextAttemptAt: leaseUntil, endedAt: nil)
            state.webhooks[claimed.id]?.delivery = claimed
            state.webhooks[claimed.id]?.claimTurn = (lastTurn.values.max() ?? 0) + 1
            return claimed
        }
    }

    public func recordWebhookAttempt(_ attempt: WebhookAttempt, then next: WebhookNext) async throws(LedgerError) {
        let (stateName, nextAt, endedAt) = next.columns(after: attempt)
        try locked { state in
            guard let stored = state.webhooks[attempt.deliveryID] else { return }
            state.webhooks[attempt.deliveryID]?.attempts.append(attempt)
            state.webhooks[attempt.deliveryID]?.delivery = stored.delivery.with(
                state: WebhookState(rawValue: stateName) ?? .failed, attempts: attempt.number, nextAttemptAt: nextAt, endedAt: endedAt)
        }
    }

    public func webhookDeliveries(jobID: String) async throws(LedgerError) -> [WebhookDelivery] {
        try locked { state in
            state.webhooks.values.filter { $0.delivery.jobID == jobID }
                .sorted { ($0.delivery.createdAt, $0.sequence) < ($1.delivery.createdAt, $1.sequence) }.map(\.delivery)
        }
    }

    public func webhookAttempts(deliveryID: String) async throws(LedgerError) -> [WebhookAttempt] {
        try locked { state in (state.webhooks[deliveryID]?.attempts ?? []).sorted { $0.number < $1.number } }
    }

    public func purgeWebhooks(endedBefore cutoff: Timestamp) async throws(LedgerError) {
        try locked { state in state.webhooks = state.webhooks.filter { ($0.value.delivery.endedAt ?? .max) >= cutoff } }
    }
}

extension InMemoryState {
    /// Stores a new pending delivery, due at once.
    mutating func queue(_ webhook: NewWebhook, at createdAt: Timestamp) -> WebhookDelivery {
        let delivery = WebhookDelivery(
            id: "msg_" + RandomUUID.make(), keyID: webhook.keyID, jobID: webhook.jobID, url: webhook.url, body: webhook.body,
            state: .pending, attempts: 0, nextAttemptAt: createdAt, createdAt: createdAt, endedAt: nil, recipient: webhook.recipient)
        sequence += 1
        webhooks[delivery.id] = InMemoryLedger.StoredDelivery(delivery: delivery, sequence: sequence)
        return delivery
    }
}

extension WebhookDelivery {
    func with(state: WebhookState, attempts: Int, nextAttemptAt: Timestamp?, endedAt: Timestamp?) -> WebhookDelivery {
        WebhookDelivery(
            id: id, keyID: keyID, jobID: jobID, url: url, body: body, state: state, attempts: attempts,
            nextAttemptAt: nextAttemptAt, createdAt: createdAt, endedAt: endedAt, recipient: recipient)
    }
}
