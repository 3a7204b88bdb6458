import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// The SQLite ledger's write-ahead log: the pages a request writes to it, and its checkpoints. A
/// connection of the ledger's own copies the log back into the database file, off the callers'
/// threads (`SQLiteCheckpointer`): the commit that did it made its caller, and every other request
/// of its event loop, wait for two fsyncs.
@Suite("SQLite write-ahead log")
struct SQLiteWriteAheadLogTests {
    /// The most frames the log at `path` has held: SQLite writes it again from its start after a
    /// checkpoint, so its file keeps the length of its longest run.
    static func longestLog(_ path: String) throws -> Int {
        let log = try Data(contentsOf: URL(fileURLWithPath: path + "-wal"))
        guard log.count > 32 else { return 0 }
        let pageSize = log[8..<12].reduce(0) { $0 << 8 | Int($1) }
        return (log.count - 32) / (24 + pageSize)
    }

    /// Without the checkpointer, the last writes stay in the log until a commit crosses SQLite's
    /// mark: read alone, the database file lacks them.
    @Test func soonAfterTheWritesStopTheDatabaseFileHoldsThemAll() async throws {
        let path = Scratch.path("checkpoints", pathExtension: "sqlite").path
        let ledger = try SQLiteLedger(path: path)
        let (key, _) = try await ledger.createKey(NewKey(name: "gil"))
        _ = try await ledger.adjust(.key(key.id), by: credits("100"), reason: "top-up")
        // 201 holds and charges one at a time, as requests that come one by one make them: some
        // thousands of pages through the log.
        for _ in 0..<201 {
            guard case .held(let hold, _) = try await ledger.reserve(keyID: key.id, amount: credits("0.01"), expiresAt: .max) else {
                Issue.record("the hold was refused")
                return
            }
            _ = try await ledger.post(hold, charge: credits("0.01"))
        }
        // The file without its log (`immutable`: SQLite reads neither the log nor its locks).
        let settled = try await eventually(timeout: .seconds(10)) {
            let run = try await Command.run("sqlite3", ["file:\(path)?immutable=1", "SELECT COUNT(*) FROM hold WHERE state = 'posted'"])
            return run.output.trimmingCharacters(in: .whitespacesAndNewlines) == "201"
        }
        #expect(settled, "the database file lacks some of the 201 charges")
        // The mark at which a commit checkpoints, and one commit past it.
        let longest = try Self.longestLog(path)
        #expect(longest <= SQLiteCheckpointer.inlineMark + 20, "the log reached \(longest) pages")
        #expect(try await ledger.verify().isEmpty)
    }

    /// Each index a hold enters costs its commit a page of the log: a hold without a team enters
    /// none in the index of holds by team, and a query by team and time still uses that index.
    @Test func onlyTeamMembersHoldsAreIndexedByTeam() async throws {
        let path = Scratch.path("team-index", pathExtension: "sqlite").path
        let ledger = try SQLiteLedger(path: path)
        let team = try await ledger.createTeam(name: "crew")
        _ = try await ledger.adjust(.team(team.id), by: credits("100"), reason: "top-up")
        let (loner, _) = try await ledger.createKey(NewKey(name: "loner"))
        let (member, _) = try await ledger.createKey(NewKey(name: "member", teamID: team.id))
        for key in [loner, member] {
            _ = try await ledger.adjust(.key(key.id), by: credits("100"), reason: "top-up")
            for _ in 0..<(key.id == loner.id ? 30 : 7) {
                guard case .held = try await ledger.reserve(keyID: key.id, amount: credits("0.01"), expiresAt: .max) else {
                    Issue.record("the hold was refused")
                    return
                }
            }
        }
        func sqlite(_ query: String) async throws -> String {
            let run = try await Command.run("sqlite3", [path, query])
            #expect(run.status == 0, "\(run.errors)")
            return run.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let indexed = try await sqlite("SELECT SUM(ncell) FROM dbstat WHERE name = 'hold_by_team_and_time' AND pagetype = 'leaf'")
        #expect(indexed == "7", "the member's 7 holds, none of the loner's 30")
        let plan = try await sqlite("EXPLAIN QUERY PLAN SELECT COUNT(*) FROM hold WHERE team_id = '\(team.id)' AND created_at > 0")
        #expect(plan.contains("INDEX hold_by_team_and_time (team_id=?"), "\(plan)")
    }
}
