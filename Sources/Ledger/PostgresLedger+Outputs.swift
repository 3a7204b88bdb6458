import Foundation
import PostgresNIO

/// Generated images in PostgreSQL, so that every replica serves the images any of them generated.
extension PostgresLedger: OutputRecordStore {
    /// Images are compressed already: stored out of line without trying to compress them again.
    static let outputsSchema: [PostgresQuery] = [
        "CREATE TABLE output (name TEXT PRIMARY KEY, bytes BYTEA NOT NULL, created_at BIGINT NOT NULL)",
        "ALTER TABLE output ALTER COLUMN bytes SET STORAGE EXTERNAL",
        "CREATE INDEX output_by_age ON output (created_at)",
    ]

    public func saveOutput(named name: String, bytes: [UInt8], at: Timestamp) async throws(LedgerError) {
        let data = Data(bytes)
        try await perform { client, logger in
            try await client.query(
                """
                INSERT INTO output (name, bytes, created_at) VALUES (\(name), \(data), \(at))
                ON CONFLICT (name) DO UPDATE SET bytes = EXCLUDED.bytes, created_at = EXCLUDED.created_at
                """, logger: logger)
        }
    }

    public func output(named name: String) async throws(LedgerError) -> (bytes: [UInt8], createdAt: Timestamp)? {
        let row = try await perform { client, logger in
            try await Self.first(client.query("SELECT bytes, created_at FROM output WHERE name = \(name)", logger: logger), (Data, Int64).self)
        }
        return row.map { (Array($0.0), $0.1) }
    }

    public func purgeOutputs(createdBefore cutoff: Timestamp) async throws(LedgerError) -> Int {
        try await perform { client, logger in
            var count = 0
            for try await _ in try await client.query("DELETE FROM output WHERE created_at < \(cutoff) RETURNING 1", logger: logger) { count += 1 }
            return count
        }
    }
}
