import Foundation
import GRDB
import GenerationCore

/// The settle of a job that ended, in the SQLite file: the job's mark, its hold's charge or
/// release, its usage event and its webhook commit together, once.
extension SQLiteLedger {
    /// When a job was settled. The jobs that ended before count as settled, but for those whose hold
    /// is still open: their gateway died between their end and their settle, which is made now.
    static let jobSettlementSchema = """
        ALTER TABLE job ADD COLUMN settled_at INTEGER;
        UPDATE job SET settled_at = finished_at
        WHERE finished_at IS NOT NULL AND hold_id NOT IN (SELECT id FROM hold WHERE state = 'open');
        CREATE INDEX job_unsettled ON job (finished_at) WHERE finished_at IS NOT NULL AND settled_at IS NULL;
        """

    public func settleJob(_ settlement: JobSettlement) async throws(LedgerError) -> Bool {
        let at = now()
        return try await write { db in
            // Under SQLite's single writer, the first settle marks the job; any other finds it marked.
            try db.execute(
                sql: "UPDATE job SET settled_at = ? WHERE id = ? AND settled_at IS NULL AND state IN ('COMPLETED', 'FAILED')",
                arguments: [at, settlement.jobID])
            guard db.changesCount == 1 else { return false }
            do {
                if let charge = settlement.charge {
                    _ = try Self.settle(settlement.hold, as: "posted", charge: charge, reason: "charged", at: at, in: db)
                } else {
                    _ = try Self.settle(settlement.hold, as: "voided", charge: .zero, reason: settlement.releaseReason, at: at, in: db)
                }
            } catch LedgerError.unknownHold(_), LedgerError.holdSettled(_) {
                // Nothing to move (a release of a hold that expired); thrown before anything was written.
            }
            try Self.insert(settlement.usage, db)
            if let webhook = settlement.webhook { _ = try Self.queue(webhook, at: at, in: db) }
            return true
        }
    }

    public func unsettledJobIDs(limit: Int) async throws(LedgerError) -> [String] {
        try await read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM job WHERE finished_at IS NOT NULL AND settled_at IS NULL ORDER BY finished_at, rowid LIMIT ?",
                arguments: [max(limit, 0)])
        }
    }
}
