import GRDB
import Testing

@testable import Ledger

@Suite("Rows read by name through their statement")
struct StatementRowTests {
    /// Each value comes back as a fetched `Row` reads it: by its name in any case, NULL as nil, a
    /// flag as a Bool. The statement's index of its columns is made once and serves every fetch,
    /// each reading its own row.
    @Test func itReadsWhatRowReadsAndEachFetchItsOwnRow() throws {
        try DatabaseQueue().read { db in
            let statement = try db.cachedStatement(sql: "SELECT ? AS Amount, NULL AS team_id, 'open' AS state, 1 AS rolling, ? AS key_id")
            for (amount, key) in [(7, "first"), (-3, "second")] {
                let row = try #require(try StatementRow.fetchOne(statement, arguments: [amount, key]))
                let plain = try #require(try Row.fetchOne(statement, arguments: [amount, key]))
                #expect(row["amount"] as Int64 == Int64(amount) && row["AMOUNT"] as Int64 == plain["Amount"] as Int64)
                #expect(row["team_id"] as String? == nil && plain["team_id"] as String? == nil)
                #expect(row["state"] as String == "open")
                #expect(row["rolling"] as Bool)
                #expect(row["key_id"] as String == key)
            }
        }
    }
}
