import Foundation
import GenerationCore
import PostgresNIO

/// The settle of a job that ended, in PostgreSQL: the job's mark, its hold's charge or release, its
/// usage event and its webhook commit together, once across replicas.
extension PostgresLedger {
    /// When a job was settled. The jobs that ended before count as settled, but for those whose hold
    /// is still open: their gateway died between their end and their settle, which is made now.
    static let jobSettlementSchema: [PostgresQuery] = [
        "ALTER TABLE job ADD COLUMN settled_at BIGINT",
        """
        UPDATE job SET settled_at = finished_at
        WHERE finished_at IS NOT NULL AND hold_id NOT IN (SELECT id FROM hold WHERE state = 'open')
        """,
        "CREATE INDEX job_unsettled ON job (finished_at) WHERE finished_at IS NOT NULL AND settled_at IS NULL",
    ]

    public func settleJob(_ settlement: JobSettlement) async throws(LedgerError) -> Bool {
        let at = now(), hold = settlement.hold
        return try await transaction { connection, logger in
            // The job's row lock makes one settle win, across replicas too: another waits for it,
            // then finds the job settled.
            guard
                try await Self.first(
                    connection.query(
                        """
                        UPDATE job SET settled_at = \(at)
                        WHERE id = \(settlement.jobID) AND settled_at IS NULL AND state IN ('COMPLETED', 'FAILED') RETURNING id
                        """, logger: logger), String.self) != nil
            else {
                return false
            }
            // The hold's row is locked before its key's and team's, as every settle locks them.
            if let (amount, state) = try await Self.first(
                connection.query("SELECT amount, state FROM hold WHERE id = \(hold.rawValue) FOR UPDATE", logger: logger), (Int64, String).self)
            {
                let charge = settlement.charge?.microCredits ?? 0
                guard charge >= 0, charge <= amount else { throw LedgerError.chargeExceedsHold(hold) }
                if state == "open" {
                    let settle = SettleStatement(
                        state: settlement.charge == nil ? "voided" : "posted", charge: charge,
                        reason: settlement.charge == nil ? settlement.releaseReason : "charged", now: at, holdID: hold.rawValue)
                    for try await _ in try await connection.execute(settle, logger: logger) {}
                } else if state == "expired", settlement.charge != nil {
                    _ = try await Self.chargeLate(hold, charge: charge, at: at, on: connection, logger: logger)
                }
            }
            try await connection.query(Self.recording(settlement.usage), logger: logger)
            if let webhook = settlement.webhook { try await connection.query(try Self.queue(webhook, at: at), logger: logger) }
            return true
        }
    }

    public func unsettledJobIDs(limit: Int) async throws(LedgerError) -> [String] {
        let limit = Int64(max(limit, 0))
        return try await perform { client, logger in
            var ids: [String] = []
            for try await id in try await client.query(
                "SELECT id FROM job WHERE finished_at IS NOT NULL AND settled_at IS NULL ORDER BY finished_at, id LIMIT \(limit)", logger: logger
            ).decode(String.self) {
                ids.append(id)
            }
            return ids
        }
    }
}
