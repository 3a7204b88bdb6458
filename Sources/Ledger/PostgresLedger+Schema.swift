import PostgresNIO

/// The PostgreSQL ledger's tables, created or brought up to date at start-up, never down.
extension PostgresLedger {
    /// Named, forward-only migrations, applied under an advisory lock so that replicas starting
    /// together apply each one once.
    func migrate() async throws {
        let migrations: [(String, [PostgresQuery])] = [
            (
                "001 keys, entries, holds, usage",
                [
                    """
                    CREATE TABLE api_key (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash BYTEA NOT NULL, created_at BIGINT NOT NULL,
                        expires_at BIGINT, revoked_at BIGINT, models TEXT, rate_limit_per_minute INTEGER)
                    """,
                    "CREATE TABLE balance (key_id TEXT PRIMARY KEY REFERENCES api_key(id), balance BIGINT NOT NULL, held BIGINT NOT NULL CHECK (held >= 0))",
                    """
                    CREATE TABLE entry (
                        id BIGSERIAL PRIMARY KEY, key_id TEXT NOT NULL REFERENCES api_key(id),
                        kind TEXT NOT NULL CHECK (kind IN ('topup', 'adjustment', 'post')), amount BIGINT NOT NULL, hold_id TEXT,
                        reason TEXT NOT NULL, created_at BIGINT NOT NULL)
                    """,
                    """
                    CREATE TABLE hold (
                        id TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES api_key(id), amount BIGINT NOT NULL CHECK (amount > 0),
                        state TEXT NOT NULL CHECK (state IN ('open', 'posted', 'voided', 'expired')), charged BIGINT, reason TEXT,
                        expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, settled_at BIGINT)
                    """,
                    "CREATE INDEX hold_open_by_expiry ON hold (expires_at) WHERE state = 'open'",
                    """
                    CREATE TABLE usage_event (
                        id BIGSERIAL PRIMARY KEY, key_id TEXT NOT NULL, model TEXT NOT NULL, status INTEGER NOT NULL, cost BIGINT NOT NULL,
                        duration_ms BIGINT NOT NULL, backend TEXT NOT NULL, request_id TEXT NOT NULL, at BIGINT NOT NULL)
                    """,
                    "CREATE INDEX usage_by_key_and_time ON usage_event (key_id, at)",
                ]
            ),
            ("002 settings", ["CREATE TABLE setting (name TEXT PRIMARY KEY, value BYTEA NOT NULL)"]),
            (
                "003 idempotency keys",
                [
                    """
                    CREATE TABLE idempotency_key (
                        key_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, fingerprint BYTEA NOT NULL, status INTEGER, headers TEXT,
                        body BYTEA, created_at BIGINT NOT NULL, PRIMARY KEY (key_id, idempotency_key))
                    """,
                    "CREATE INDEX idempotency_by_age ON idempotency_key (created_at)",
                ]
            ),
            (
                "004 teams",
                [
                    """
                    CREATE TABLE team (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, balance BIGINT NOT NULL DEFAULT 0,
                        held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0))
                    """,
                    """
                    CREATE TABLE team_entry (
                        id BIGSERIAL PRIMARY KEY, team_id TEXT NOT NULL REFERENCES team(id),
                        kind TEXT NOT NULL CHECK (kind IN ('topup', 'adjustment', 'post')), amount BIGINT NOT NULL, hold_id TEXT,
                        reason TEXT NOT NULL, created_at BIGINT NOT NULL)
                    """,
                    "ALTER TABLE api_key ADD COLUMN team_id TEXT REFERENCES team(id)",
                    "CREATE INDEX api_key_by_team ON api_key (team_id)",
                    "ALTER TABLE hold ADD COLUMN team_id TEXT REFERENCES team(id)",
                ]
            ),
            (
                "005 upstream cost on usage events",
                [
                    "ALTER TABLE usage_event ADD COLUMN upstream_cost TEXT, ADD COLUMN upstream_remaining_credits TEXT"
                ]
            ),
            ("006 jobs", Self.jobsSchema),
            ("007 webhooks", Self.webhooksSchema),
            ("008 idempotency backed by holds, jobs claimed in turns", Self.idempotencyHoldsSchema + Self.jobTurnsSchema),
            // Events recorded before keep an empty dialect: which API they came through was not kept.
            ("009 dialect on usage events", ["ALTER TABLE usage_event ADD COLUMN dialect TEXT NOT NULL DEFAULT ''"]),
            ("010 public ids of jobs", Self.jobPublicIDsSchema),
            ("011 periodic budgets", Self.periodicBudgetsSchema),
            ("012 alerts", Self.alertsSchema),
            ("013 cancel of jobs", ["ALTER TABLE job ADD COLUMN cancelled_at BIGINT"]),
            ("014 entries by time", Self.entriesByTimeSchema),
            ("015 shared rate limits and outputs", Self.rateLimitSchema + Self.outputsSchema),
            ("016 holds by team for team members only", Self.teamHoldsIndexSchema),
            ("017 claims of idempotency keys", Self.idempotencyClaimsSchema),
            ("018 webhooks claimed in turns", Self.webhookTurnsSchema),
            ("019 usage by time", ["CREATE INDEX usage_by_time ON usage_event (at)"]),
            ("020 requests that held nothing counted", Self.countedUsageSchema),
            ("021 settled jobs", Self.jobSettlementSchema),
            ("022 job inputs apart", ["ALTER TABLE job ADD COLUMN input BYTEA"]),
        ]
        try await client.withTransaction(logger: logger) { connection in
            // One migrator at a time across replicas; the lock ends with the transaction.
            try await connection.query("SELECT pg_advisory_xact_lock(7061706)", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS sdgate_migration (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)", logger: logger)
            var applied: Set<String> = []
            for try await name in try await connection.query("SELECT name FROM sdgate_migration", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            let unknown = applied.subtracting(migrations.map(\.0))
            guard unknown.isEmpty else { throw LedgerError.newerSchema(unknown) }
            for (name, statements) in migrations where !applied.contains(name) {
                for statement in statements { try await connection.query(statement, logger: logger) }
                try await connection.query("INSERT INTO sdgate_migration (name, applied_at) VALUES (\(name), \(self.now()))", logger: logger)
            }
        }
    }
}
