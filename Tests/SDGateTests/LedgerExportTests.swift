import Foundation
import TestSupport
import Testing

/// `sdgate ledger export`: the movements of a period as CSV that a spreadsheet or Python's csv module
/// reads back field for field, or as JSON lines; a reason typed to run as a formula is defused.
@Suite("sdgate ledger export", .serialized)
struct LedgerExportTests {
    static let awkwardReason = "=SUM(A1), \"refund\"\r\nsecond line"

    @Test func csvAndJSONLinesHoldEveryMovementAsWritten() async throws {
        let environment = try KeysCommandTests.environment()
        let team = try await RunningGateway.run(["teams", "create", "--name", "studio, east", "--credits", "10", "--json"], environment: environment)
        let teamID = try #require((try KeysCommandTests.json(team.output) as? [String: Any])?["id"] as? String)
        let created = try await RunningGateway.run(
            ["keys", "create", "--name", "alice", "--credits", "2.5", "--team", teamID, "--json"], environment: environment)
        let keyID = try #require((try KeysCommandTests.json(created.output) as? [String: Any])?["id"] as? String)
        let deducted = try await RunningGateway.run(["keys", "deduct", keyID, "0.75", "--reason", Self.awkwardReason], environment: environment)
        #expect(deducted.status == 0, "\(deducted.errors)")

        let csv = try await RunningGateway.run(["ledger", "export", "--since", "1h", "--format", "csv"], environment: environment)
        #expect(csv.status == 0, "\(csv.errors)")
        let file = Scratch.path("export", pathExtension: "csv")
        try Data(csv.output.utf8).write(to: file)
        // Python's csv module, as an accountant's script would read it, prints each row as JSON.
        let read = try await Command.run(
            "python3",
            ["-c", "import csv, json, sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline='')))))", file.path])
        let rows = try #require(try KeysCommandTests.json(read.output) as? [[String]])
        #expect(rows.first == ["time", "account_type", "account_id", "account_name", "kind", "amount", "hold_id", "reason"])
        let body = rows.dropFirst().map { Array($0[1...]) }
        #expect(
            Set(body) == [
                ["team", teamID, "studio, east", "topup", "10", "", "initial credits"],
                ["key", keyID, "alice", "topup", "2.5", "", "initial credits"],
                ["key", keyID, "alice", "adjustment", "-0.75", "", "'" + Self.awkwardReason],
            ], "\(read.output) \(read.errors)")
        #expect(rows.dropFirst().allSatisfy { $0[0].hasSuffix("Z") && $0[0].contains(".") }, "UTC times with milliseconds")

        let lines = try await RunningGateway.run(["ledger", "export", "--since", "1h", "--format", "jsonl"], environment: environment)
        let objects = try lines.output.split(separator: "\n").map { try #require(try KeysCommandTests.json(String($0)) as? [String: String]) }
        #expect(objects.map { $0["amount"] } == rows.dropFirst().map { $0[5] })
        #expect(objects.contains { $0["reason"] == Self.awkwardReason }, "JSON lines keep the reason as it was written")

        let earlier = try await RunningGateway.run(["ledger", "export", "--since", "2026-01-01", "--until", "2026-02-01"], environment: environment)
        #expect(earlier.output.split(separator: "\r\n").count == 1, "only the header: nothing before the period")
        for bad in [["--format", "xlsx"], ["--since", "yesterday"], ["--since", "1m", "--until", "2h"]] {
            let refused = try await RunningGateway.run(["ledger", "export"] + bad, environment: environment)
            #expect(refused.status != 0 && refused.output.isEmpty && !refused.errors.isEmpty, "\(bad)")
        }
    }
}
