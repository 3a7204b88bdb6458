import Foundation
import GRDB

/// The SQLite ledger's tables, as named, forward-only migrations: a database is brought up to date
/// at start-up, never down.
extension SQLiteLedger {
    /// Two processes opening a new database at once (a server starting while `sdgate keys` runs)
    /// can both find a migration missing; the loser's attempt fails, and a second look finds it applied.
    static func migrate(_ pool: DatabasePool) throws {
        let unknown = try pool.read { db in try migrator.appliedIdentifiers(db).subtracting(migrator.migrations) }
        guard unknown.isEmpty else { throw LedgerError.newerSchema(unknown) }
        for attempt in 1...5 {
            do {
                try migrator.migrate(pool)
                return
            } catch _ where attempt < 5 {
                Thread.sleep(forTimeInterval: 0.05 * Double(attempt))
            }
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("001 keys, entries, holds, usage") { db in
            try db.execute(
                sql: """
                    CREATE TABLE api_key (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        secret_hash BLOB NOT NULL,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER,
                        revoked_at INTEGER,
                        models TEXT,
                        rate_limit_per_minute INTEGER
                    );
                    -- The running totals every reserve checks; derivable from entry and hold, which verify proves.
                    CREATE TABLE balance (
                        key_id TEXT PRIMARY KEY REFERENCES api_key(id),
                        balance INTEGER NOT NULL,
                        held INTEGER NOT NULL CHECK (held >= 0)
                    );
                    -- Every movement, never updated or deleted: top-up, adjustment, post (a charge).
                    CREATE TABLE entry (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        key_id TEXT NOT NULL REFERENCES api_key(id),
                        kind TEXT NOT NULL CHECK (kind IN ('topup', 'adjustment', 'post')),
                        amount INTEGER NOT NULL,
                        hold_id TEXT,
                        reason TEXT NOT NULL,
                        created_at INTEGER NOT NULL
                    );
                    CREATE TABLE hold (
                        id TEXT PRIMARY KEY,
                        key_id TEXT NOT NULL REFERENCES api_key(id),
                        amount INTEGER NOT NULL CHECK (amount > 0),
                        state TEXT NOT NULL CHECK (state IN ('open', 'posted', 'voided', 'expired')),
                        charged INTEGER,
                        reason TEXT,
                        expires_at INTEGER NOT NULL,
                        created_at INTEGER NOT NULL,
                        settled_at INTEGER
                    );
                    CREATE INDEX hold_open_by_expiry ON hold (expires_at) WHERE state = 'open';
                    CREATE TABLE usage_event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        key_id TEXT NOT NULL,
                        model TEXT NOT NULL,
                        status INTEGER NOT NULL,
                        cost INTEGER NOT NULL,
                        duration_ms INTEGER NOT NULL,
                        backend TEXT NOT NULL,
                        request_id TEXT NOT NULL,
                        at INTEGER NOT NULL
                    );
                    CREATE INDEX usage_by_key_and_time ON usage_event (key_id, at);
                    """)
        }
        migrator.registerMigration("002 settings") { db in
            try db.execute(sql: "CREATE TABLE setting (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
        }
        migrator.registerMigration("003 idempotency keys") { db in
            try db.execute(
                sql: """
                    CREATE TABLE idempotency_key (
                        key_id TEXT NOT NULL,
                        idempotency_key TEXT NOT NULL,
                        fingerprint BLOB NOT NULL,
                        status INTEGER,
                        headers TEXT,
                        body BLOB,
                        created_at INTEGER NOT NULL,
                        PRIMARY KEY (key_id, idempotency_key)
                    );
                    CREATE INDEX idempotency_by_age ON idempotency_key (created_at);
                    """)
        }
        migrator.registerMigration("004 teams") { db in
            try db.execute(
                sql: """
                    -- A team's running totals live on its row, checked by every member's reserve.
                    CREATE TABLE team (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        created_at INTEGER NOT NULL,
                        balance INTEGER NOT NULL DEFAULT 0,
                        held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0)
                    );
                    -- A team's movements, as entry is a key's.
                    CREATE TABLE team_entry (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        team_id TEXT NOT NULL REFERENCES team(id),
                        kind TEXT NOT NULL CHECK (kind IN ('topup', 'adjustment', 'post')),
                        amount INTEGER NOT NULL,
                        hold_id TEXT,
                        reason TEXT NOT NULL,
                        created_at INTEGER NOT NULL
                    );
                    ALTER TABLE api_key ADD COLUMN team_id TEXT REFERENCES team(id);
                    CREATE INDEX api_key_by_team ON api_key (team_id);
                    -- A member's hold holds the same amount of its team's budget.
                    ALTER TABLE hold ADD COLUMN team_id TEXT REFERENCES team(id);
                    """)
        }
        migrator.registerMigration("005 upstream cost on usage events") { db in
            try db.execute(
                sql: """
                    ALTER TABLE usage_event ADD COLUMN upstream_cost TEXT;
                    ALTER TABLE usage_event ADD COLUMN upstream_remaining_credits TEXT;
                    """)
        }
        migrator.registerMigration("006 jobs") { db in try db.execute(sql: Self.jobsSchema) }
        migrator.registerMigration("007 webhooks") { db in try db.execute(sql: Self.webhooksSchema) }
        migrator.registerMigration("008 idempotency backed by holds, jobs claimed in turns") { db in
            try db.execute(sql: Self.idempotencyHoldsSchema + Self.jobTurnsSchema)
        }
        // Events recorded before keep an empty dialect: which API they came through was not kept.
        migrator.registerMigration("009 dialect on usage events") { db in
            try db.execute(sql: "ALTER TABLE usage_event ADD COLUMN dialect TEXT NOT NULL DEFAULT ''")
        }
        migrator.registerMigration("010 public ids of jobs") { db in try db.execute(sql: Self.jobPublicIDsSchema) }
        migrator.registerMigration("011 periodic budgets") { db in try db.execute(sql: Self.periodicBudgetsSchema) }
        migrator.registerMigration("012 alerts") { db in try db.execute(sql: Self.alertsSchema) }
        migrator.registerMigration("013 cancel of jobs") { db in try db.execute(sql: Self.jobCancelSchema) }
        migrator.registerMigration("014 entries by time") { db in try db.execute(sql: Self.entriesByTimeSchema) }
        migrator.registerMigration("015 holds by team for team members only") { db in try db.execute(sql: Self.teamHoldsIndexSchema) }
        migrator.registerMigration("016 claims of idempotency keys") { db in try db.execute(sql: Self.idempotencyClaimsSchema) }
        migrator.registerMigration("017 webhooks claimed in turns") { db in try db.execute(sql: Self.webhookTurnsSchema) }
        migrator.registerMigration("018 usage by time") { db in try db.execute(sql: Self.usageByTimeSchema) }
        migrator.registerMigration("019 requests that held nothing counted") { db in try db.execute(sql: Self.countedUsageSchema) }
        migrator.registerMigration("020 settled jobs") { db in try db.execute(sql: Self.jobSettlementSchema) }
        migrator.registerMigration("021 job inputs apart") { db in try db.execute(sql: Self.jobInputSchema) }
        return migrator
    }
}
