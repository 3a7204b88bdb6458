import Foundation
import PostgresNIO

/// Webhook deliveries and their attempts in PostgreSQL. Replicas claim due deliveries with
/// `FOR UPDATE SKIP LOCKED`, so each attempt is made by one of them.
extension PostgresLedger: WebhookStore {
    static let webhooksSchema: [PostgresQuery] = [
        "CREATE TABLE webhook_secret (key_id TEXT PRIMARY KEY REFERENCES api_key(id), secret TEXT NOT NULL, created_at BIGINT NOT NULL)",
        """
        CREATE TABLE webhook_delivery (
            id TEXT PRIMARY KEY, key_id TEXT NOT NULL, job_id TEXT NOT NULL, url TEXT NOT NULL, body BYTEA NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')), attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at BIGINT, created_at BIGINT NOT NULL, ended_at BIGINT)
        """,
        "CREATE INDEX webhook_due ON webhook_delivery (next_attempt_at) WHERE state = 'PENDING'",
        "CREATE INDEX webhook_by_job ON webhook_delivery (job_id)",
        "CREATE INDEX webhook_ended ON webhook_delivery (ended_at) WHERE ended_at IS NOT NULL",
        """
        CREATE TABLE webhook_attempt (
            delivery_id TEXT NOT NULL REFERENCES webhook_delivery(id) ON DELETE CASCADE, number INTEGER NOT NULL, at BIGINT NOT NULL,
            status INTEGER, error TEXT, duration_ms BIGINT NOT NULL, PRIMARY KEY (delivery_id, number))
        """,
    ]

    /// Each claim's turn (`claimDueWebhook`), as the job queue's: a key's last claim is its
    /// deliveries' largest turn.
    static let webhookTurnsSchema: [PostgresQuery] = [
        "ALTER TABLE webhook_delivery ADD COLUMN claim_turn BIGINT",
        "CREATE SEQUENCE webhook_claim_turn",
        "CREATE INDEX webhook_turns_by_key ON webhook_delivery (key_id, claim_turn)",
    ]

    static let deliveryColumns = "id, key_id, job_id, url, body, state, attempts, next_attempt_at, created_at, ended_at, recipient"

    public func webhookSecret(keyID: String) async throws(LedgerError) -> String {
        let candidate = APIKeySecret.makeWebhookSecret(), createdAt = now()
        let secret = try await perform { client, logger -> String? in
            try await client.query(
                """
                INSERT INTO webhook_secret (key_id, secret, created_at) SELECT id, \(candidate), \(createdAt) FROM api_key WHERE id = \(keyID)
                ON CONFLICT (key_id) DO NOTHING
                """, logger: logger)
            for try await secret in try await client.query("SELECT secret FROM webhook_secret WHERE key_id = \(keyID)", logger: logger)
                .decode(String.self)
            { return secret }
            return nil
        }
        guard let secret else { throw .unknownKey(keyID) }
        return secret
    }

    public func enqueueWebhook(_ webhook: NewWebhook) async throws(LedgerError) -> WebhookDelivery {
        guard let delivery = try await deliveries(try Self.queue(webhook, at: now())).first else {
            throw .storage("the webhook was not stored")
        }
        return delivery
    }

    /// The statement that stores a new pending delivery, due at once.
    static func queue(_ webhook: NewWebhook, at createdAt: Timestamp) throws -> PostgresQuery {
        let id = "msg_" + RandomUUID.make(), body = Data(webhook.body), recipient = webhook.recipient.rawValue
        return try """
        INSERT INTO webhook_delivery (id, key_id, job_id, url, body, state, next_attempt_at, created_at, recipient)
        VALUES (\(id), \(webhook.keyID), \(webhook.jobID), \(webhook.url), \(body), 'PENDING', \(createdAt), \(createdAt), \(recipient))
        RETURNING \(unescaped: Self.deliveryColumns)
        """
    }

    public func claimDueWebhook(now: Timestamp, leaseUntil: Timestamp) async throws(LedgerError) -> WebhookDelivery? {
        try await deliveries(
            """
            UPDATE webhook_delivery SET next_attempt_at = \(leaseUntil), claim_turn = nextval('webhook_claim_turn')
            WHERE id = (
                SELECT d.id FROM webhook_delivery d WHERE d.state = 'PENDING' AND d.next_attempt_at <= \(now)
                ORDER BY d.recipient <> 'operator', (SELECT MAX(c.claim_turn) FROM webhook_delivery c WHERE c.key_id = d.key_id) NULLS FIRST,
                         d.next_attempt_at
                LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING \(unescaped: Self.deliveryColumns)
            """
        ).first
    }

    public func recordWebhookAttempt(_ attempt: WebhookAttempt, then next: WebhookNext) async throws(LedgerError) {
        let (state, nextAt, endedAt) = next.columns(after: attempt)
        try await transaction { connection, logger in
            try await connection.query(
                """
                INSERT INTO webhook_attempt (delivery_id, number, at, status, error, duration_ms)
                VALUES (\(attempt.deliveryID), \(attempt.number), \(attempt.at), \(attempt.status), \(attempt.error), \(attempt.durationMilliseconds))
                """, logger: logger)
            try await connection.query(
                """
                UPDATE webhook_delivery SET attempts = \(attempt.number), state = \(state), next_attempt_at = \(nextAt), ended_at = \(endedAt)
                WHERE id = \(attempt.deliveryID)
                """, logger: logger)
        }
    }

    public func webhookDeliveries(jobID: String) async throws(LedgerError) -> [WebhookDelivery] {
        try await deliveries("SELECT \(unescaped: Self.deliveryColumns) FROM webhook_delivery WHERE job_id = \(jobID) ORDER BY created_at")
    }

    public func webhookAttempts(deliveryID: String) async throws(LedgerError) -> [WebhookAttempt] {
        try await perform { client, logger in
            var attempts: [WebhookAttempt] = []
            let rows = try await client.query(
                """
                SELECT delivery_id, number, at, status, error, duration_ms FROM webhook_attempt WHERE delivery_id = \(deliveryID) ORDER BY number
                """, logger: logger)
            for try await row in rows.decode((String, Int, Int64, Int?, String?, Int64).self) {
                attempts.append(WebhookAttempt(deliveryID: row.0, number: row.1, at: row.2, status: row.3, error: row.4, durationMilliseconds: row.5))
            }
            return attempts
        }
    }

    public func purgeWebhooks(endedBefore cutoff: Timestamp) async throws(LedgerError) {
        try await perform { client, logger in try await client.query("DELETE FROM webhook_delivery WHERE ended_at < \(cutoff)", logger: logger) }
    }

    /// Runs a query that answers delivery rows. (An autoclosure: binding `Data` can throw.)
    private func deliveries(_ query: @autoclosure () throws -> PostgresQuery) async throws(LedgerError) -> [WebhookDelivery] {
        try await perform { client, logger in
            var deliveries: [WebhookDelivery] = []
            let rows = try await client.query(try query(), logger: logger)
            for try await row in rows.decode((String, String, String, String, Data, String, Int, Int64?, Int64, Int64?, String).self) {
                deliveries.append(
                    WebhookDelivery(
                        id: row.0, keyID: row.1, jobID: row.2, url: row.3, body: Array(row.4),
                        state: WebhookState(rawValue: row.5) ?? .failed, attempts: row.6, nextAttemptAt: row.7,
                        createdAt: row.8, endedAt: row.9, recipient: WebhookRecipient(rawValue: row.10) ?? .member))
            }
            return deliveries
        }
    }
}
