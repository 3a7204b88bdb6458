import Foundation
import GRDB

extension SQLiteLedger {
    /// Copies the whole database to a new file at `path` while the gateway keeps serving: SQLite's
    /// online backup, so the copy is one consistent moment of the ledger (keys, credits, holds,
    /// usage, jobs). Refuses to overwrite a file.
    public func backup(to path: String) throws(LedgerError) {
        guard !FileManager.default.fileExists(atPath: path) else { throw .storage("\(path) exists already; choose a new file") }
        do {
            let copy = try DatabaseQueue(path: path)
            try pool.backup(to: copy)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw .storage("the backup to \(path) failed: \(error)")
        }
    }
}
