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

    /// `substring` of an uncompressed, out-of-line value reads only the chunks it covers.
    public func output(named name: String, first: Int) async throws(LedgerError) -> (size: Int, createdAt: Timestamp, head: [UInt8])? {
        let count = Int32(clamping: max(0, first))
        let row = try await perform { client, logger in
            try await Self.first(
                client.query(
                    "SELECT octet_length(bytes), created_at, substring(bytes FROM 1 FOR \(count)) FROM output WHERE name = \(name)",
                    logger: logger), (Int32, Int64, Data).self)
        }
        return row.map { (Int($0.0), $0.1, Array($0.2)) }
    }

    public func outputPiece(named name: String, from offset: Int, count: Int) async throws(LedgerError) -> [UInt8] {
        guard offset >= 0, offset < Int(Int32.max), count > 0 else { return [] }
        let (start, length) = (Int32(offset + 1), Int32(min(count, Int(Int32.max))))
        let piece = try await perform { client, logger in
            try await Self.first(
                client.query("SELECT substring(bytes FROM \(start) FOR \(length)) FROM output WHERE name = \(name)", logger: logger),
                Data.self)
        }
        return piece.map { Array($0) } ?? []
    }

    public func purgeOutputs(createdBefore cutoff: Timestamp) async throws(LedgerError) -> Int {
        try await perform { client, logger in
            var count = 0
            for try await _ in try await client.query("DELETE FROM output WHERE created_at < \(cutoff) RETURNING 1", logger: logger) { count += 1 }
            return count
        }
    }

    public func deleteOutputs(named names: [String]) async throws(LedgerError) {
        guard !names.isEmpty else { return }
        try await perform { client, logger in
            try await client.query("DELETE FROM output WHERE name = ANY(\(names))", logger: logger)
        }
    }
}
