import Foundation
import PostgresNIO

/// A key's chosen A1111 checkpoint as one of the gateway's settings (`setting`, a name and bytes):
/// one short row per key that ever picked one, no table of its own.
extension PostgresLedger: ChosenCheckpointStore {
    static func checkpointSetting(_ keyID: String) -> String { "a1111.checkpoint." + keyID }

    public func chosenCheckpoint(keyID: String) async throws(LedgerError) -> String? {
        let name = Self.checkpointSetting(keyID)
        let value = try await perform { client, logger in
            try await Self.first(client.query("SELECT value FROM setting WHERE name = \(name)", logger: logger), Data.self)
        }
        return value.map { String(decoding: $0, as: UTF8.self) }
    }

    public func chooseCheckpoint(_ checkpoint: String, keyID: String) async throws(LedgerError) {
        let (name, value) = (Self.checkpointSetting(keyID), Data(checkpoint.utf8))
        try await perform { client, logger in
            try await client.query(
                "INSERT INTO setting (name, value) VALUES (\(name), \(value)) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                logger: logger)
        }
    }
}
