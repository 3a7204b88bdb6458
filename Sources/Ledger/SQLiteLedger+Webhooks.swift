import Foundation
import GRDB

/// Webhook deliveries and their attempts in the SQLite file.
extension SQLiteLedger: WebhookStore {
    static let webhooksSchema = """
        CREATE TABLE webhook_secret (
            key_id TEXT PRIMARY KEY REFERENCES api_key(id),
            secret TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE webhook_delivery (
            id TEXT PRIMARY KEY,
            key_id TEXT NOT NULL,
            job_id TEXT NOT NULL,
            url TEXT NOT NULL,
            body BLOB NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER,
            created_at INTEGER NOT NULL,
            ended_at INTEGER
        );
        CREATE INDEX webhook_due ON webhook_delivery (next_attempt_at) WHERE state = 'PENDING';
        CREATE INDEX webhook_by_job ON webhook_delivery (job_id);
        CREATE INDEX webhook_ended ON webhook_delivery (ended_at) WHERE ended_at IS NOT NULL;
        CREATE TABLE webhook_attempt (
            delivery_id TEXT NOT NULL REFERENCES webhook_delivery(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            at INTEGER NOT NULL,
            status INTEGER,
            error TEXT,
            duration_ms INTEGER NOT NULL,
            PRIMARY KEY (delivery_id, number)
        );
        """

    /// Each claim's turn (`claimDueWebhook`), as the job queue's: a key's last claim is its
    /// deliveries' largest turn.
    static let webhookTurnsSchema = """
        ALTER TABLE webhook_delivery ADD COLUMN claim_turn INTEGER;
        CREATE INDEX webhook_turns_by_key ON webhook_delivery (key_id, claim_turn);
        CREATE INDEX webhook_turns ON webhook_delivery (claim_turn);
        """

    public func webhookSecret(keyID: String) async throws(LedgerError) -> String {
        let candidate = APIKeySecret.makeWebhookSecret(), createdAt = now()
        return try await write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM api_key WHERE id = ?", arguments: [keyID]) != nil else {
                throw LedgerError.unknownKey(keyID)
            }
            try db.execute(
                sql: "INSERT INTO webhook_secret (key_id, secret, created_at) VALUES (?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
                arguments: [keyID, candidate, createdAt])
            return try String.fetchOne(db, sql: "SELECT secret FROM webhook_secret WHERE key_id = ?", arguments: [keyID]) ?? candidate
        }
    }

    public func enqueueWebhook(_ webhook: NewWebhook) async throws(LedgerError) -> WebhookDelivery {
        let createdAt = now()
        return try await write { db in try Self.queue(webhook, at: createdAt, in: db) }
    }

    /// Stores a new pending delivery, due at once.
    static func queue(_ webhook: NewWebhook, at createdAt: Timestamp, in db: Database) throws -> WebhookDelivery {
        try deliveries(
            db,
            sql: """
                INSERT INTO webhook_delivery (id, key_id, job_id, url, body, state, next_attempt_at, created_at, recipient)
                VALUES (?, ?, ?, ?, ?, 'PENDING', ?, ?, ?) RETURNING *
                """,
            [
                "msg_" + RandomUUID.make(), webhook.keyID, webhook.jobID, webhook.url, Data(webhook.body), createdAt, createdAt,
                webhook.recipient.rawValue,
            ]
        )[0]
    }

    public func claimDueWebhook(now: Timestamp, leaseUntil: Timestamp) async throws(LedgerError) -> WebhookDelivery? {
        try await write { db in
            try Self.deliveries(
                db,
                sql: """
                    UPDATE webhook_delivery SET next_attempt_at = ?,
                                                claim_turn = (SELECT COALESCE(MAX(claim_turn), 0) + 1 FROM webhook_delivery)
                    WHERE id = (\(Self.nextDueInTurn)) RETURNING *
                    """, [leaseUntil, now]
            ).first
        }
    }

    /// The due delivery to claim next (`WebhookStore.claimDueWebhook`): the operator's first, then
    /// the keys in turns, each key's due longest first.
    private static let nextDueInTurn = """
        SELECT d.id FROM webhook_delivery d WHERE d.state = 'PENDING' AND d.next_attempt_at <= ?
        ORDER BY d.recipient <> 'operator', (SELECT MAX(c.claim_turn) FROM webhook_delivery c WHERE c.key_id = d.key_id) NULLS FIRST,
                 d.next_attempt_at, d.rowid
        LIMIT 1
        """

    public func recordWebhookAttempt(_ attempt: WebhookAttempt, then next: WebhookNext) async throws(LedgerError) {
        let (state, nextAt, endedAt) = next.columns(after: attempt)
        try await write { db in
            try db.execute(
                sql: "INSERT INTO webhook_attempt (delivery_id, number, at, status, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [attempt.deliveryID, attempt.number, attempt.at, attempt.status, attempt.error, attempt.durationMilliseconds])
            try db.execute(
                sql: "UPDATE webhook_delivery SET attempts = ?, state = ?, next_attempt_at = ?, ended_at = ? WHERE id = ?",
                arguments: [attempt.number, state, nextAt, endedAt, attempt.deliveryID])
        }
    }

    public func webhookDeliveries(jobID: String) async throws(LedgerError) -> [WebhookDelivery] {
        try await read { db in try Self.deliveries(db, sql: "SELECT * FROM webhook_delivery WHERE job_id = ? ORDER BY created_at", [jobID]) }
    }

    public func webhookAttempts(deliveryID: String) async throws(LedgerError) -> [WebhookAttempt] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM webhook_attempt WHERE delivery_id = ? ORDER BY number", arguments: [deliveryID]).map { row in
                WebhookAttempt(
                    deliveryID: row["delivery_id"], number: row["number"], at: row["at"], status: row["status"], error: row["error"],
                    durationMilliseconds: row["duration_ms"])
            }
        }
    }

    public func purgeWebhooks(endedBefore cutoff: Timestamp) async throws(LedgerError) {
        try await write { db in try db.execute(sql: "DELETE FROM webhook_delivery WHERE ended_at < ?", arguments: [cutoff]) }
    }

    private static func deliveries(_ db: Database, sql: String, _ arguments: StatementArguments) throws -> [WebhookDelivery] {
        try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            WebhookDelivery(
                id: row["id"], keyID: row["key_id"], jobID: row["job_id"], url: row["url"], body: Array(row["body"] as Data),
                state: WebhookState(rawValue: row["state"]) ?? .failed, attempts: row["attempts"], nextAttemptAt: row["next_attempt_at"],
                createdAt: row["created_at"], endedAt: row["ended_at"],
                recipient: WebhookRecipient(rawValue: row["recipient"]) ?? .member)
        }
    }
}
