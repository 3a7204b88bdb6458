import Foundation
import TestSupport
import Testing

/// `topup` and `deduct` are one pair of commands for keys and teams alike: each refuses an amount
/// that is not positive, says which command to use instead, and moves nothing.
@Suite("Credit commands for keys and teams")
struct CreditCommandsTests {
    @Test func amountsThatAreNotPositiveAreRefusedAndMoveNothing() async throws {
        let environment = try KeysCommandTests.environment()
        func run(_ arguments: [String]) async throws -> Command.Result {
            try await RunningGateway.run(arguments, environment: environment)
        }
        func available(_ arguments: [String]) async throws -> String? {
            let shown = try await run(arguments + ["--json"])
            return (try KeysCommandTests.json(shown.output) as? [String: Any])?["available"] as? String
        }
        let team = try await run(["teams", "create", "--name", "studio", "--credits", "3", "--json"])
        #expect(team.status == 0, "\(team.errors)")
        let key = try await run(["keys", "create", "--name", "ann", "--credits", "2", "--json"])
        let keyID = try #require((try KeysCommandTests.json(key.output) as? [String: Any])?["id"] as? String)

        for (group, account, balance) in [("keys", keyID, "2"), ("teams", "studio", "3")] {
            let show = [group, "show", account]
            #expect(try await available(show) == balance)
            for amount in ["0", "-1", "0.0000001"] {
                let topUp = try await run([group, "topup", account, "--", amount])
                #expect(topUp.status != 0, "\(group) topup \(amount)")
                let deduct = try await run([group, "deduct", account, "--reason", "none", "--", amount])
                #expect(deduct.status != 0, "\(group) deduct \(amount)")
            }
            let zero = try await run([group, "topup", account, "0"])
            #expect(zero.errors.contains("the amount must be positive; use `sdgate \(group) deduct` to take credits away"), "\(zero.errors)")
            #expect(try await run([group, "deduct", account, "0", "--reason", "none"]).errors.contains("the amount must be positive"))
            #expect(try await available(show) == balance, "nothing moved on \(group)")
        }
        #expect(try await run(["ledger", "verify"]).status == 0)
    }
}
