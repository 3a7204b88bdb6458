import Foundation
import GatewayAPI
import GenerationCore
import Jobs
import Ledger
import Logging

/// Where generated images are kept.
package enum OutputPlacement: String, Sendable {
    /// In the database with a PostgreSQL ledger (which several gateways may share), else in files.
    case automatic = ""
    /// Files in `outputs.folder`: one gateway's own, or a folder every replica mounts.
    case files
    /// The PostgreSQL ledger's database, which every replica reads.
    case database
}

/// What gateways sharing a PostgreSQL ledger also share through it: a key's rate limit, the
/// generated images and A1111's chosen checkpoints. A SQLite ledger belongs to one gateway, whose
/// limits, images and picks stay its own.
extension GatewayApp {
    /// The rate limit every dialect applies. In the database with PostgreSQL, so that a key limited
    /// to N a minute gets N whichever replica a request reaches; in this process otherwise (a SQLite
    /// ledger serves one gateway: a write per limited request would buy nothing there).
    func makeRateLimits() -> any RateLimiting {
        let local = RateLimiter()
        guard let shared = ledger as? any RateLimitStore else { return local }
        return DatabaseRateLimits(store: shared, fallback: local, logger: logger)
    }

    /// The A1111 checkpoint each key picked: in the database with PostgreSQL, so that a pick made
    /// through one replica holds on every other; in this process otherwise.
    func makeCheckpointChoices() -> any CheckpointChoices {
        let local = A1111Sessions()
        guard let shared = ledger as? any ChosenCheckpointStore else { return local }
        return DatabaseCheckpoints(store: shared, fallback: local, logger: logger)
    }

    /// The output store the configuration names: the database with PostgreSQL unless files are
    /// asked for, in `outputs.folder` or under the data folder.
    func makeOutputStore(ledger: any GatewayStorage) throws -> any OutputStorage {
        let records = ledger as? any OutputRecordStore
        let placement = configuration.outputStore != .automatic ? configuration.outputStore : records == nil ? .files : .database
        switch placement {
        case .database:
            guard let records else {
                throw ConfigurationError(description: ConfigurationLoader.outputsNeedPostgres)
            }
            return DatabaseOutputStore(records: records, retention: configuration.outputRetention)
        case .files, .automatic:
            let folder = configuration.outputFolder.isEmpty ? configuration.dataDirectory + "/generations" : configuration.outputFolder
            return try OutputStore(folder: URL(fileURLWithPath: folder), retention: configuration.outputRetention)
        }
    }
}

/// The checkpoints the keys picked, in the database replicas share. While it cannot be reached, the
/// replica keeps and reads picks of its own, as a single gateway would.
struct DatabaseCheckpoints: CheckpointChoices {
    let store: any ChosenCheckpointStore
    let fallback: A1111Sessions
    let logger: Logger

    func checkpoint(of key: String) async -> String? {
        do {
            return try await store.chosenCheckpoint(keyID: key)
        } catch {
            logger.warning("the chosen checkpoints could not be read; this gateway uses its own", metadata: ["error": "\(error)"])
            return await fallback.checkpoint(of: key)
        }
    }

    func setCheckpoint(_ name: String, for key: String) async {
        do {
            try await store.chooseCheckpoint(name, keyID: key)
        } catch {
            logger.warning("the chosen checkpoint could not be stored; this gateway keeps it", metadata: ["error": "\(error)"])
            await fallback.setCheckpoint(name, for: key)
        }
    }
}
