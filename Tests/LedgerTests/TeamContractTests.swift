import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// Teams: a member key spends its own credits and its team's, held together in one atomic step.
@Suite("Ledger contract: teams")
struct TeamContractTests {
    @Test(arguments: LedgerStore.available)
    func teamsHaveUniqueNamesAndTheirOwnBudget(store: LedgerStore) async throws {
        let (ledger, _) = try await store.make(clock: ManualClock())
        let team = try await ledger.createTeam(name: "design")
        #expect(team.id.hasPrefix("t") && team.id.count == 9)
        await #expect(throws: LedgerError.teamExists("design")) { try await ledger.createTeam(name: "design") }
        #expect(try await ledger.team(id: team.id) == team)
        #expect(try await ledger.teams() == [team])
        #expect(try await ledger.team(idOrName: "design") == team)
        #expect(try await ledger.adjust(.team(team.id), by: credits("5"), reason: "budget") == Balance(balance: credits("5"), held: .zero))
        await #expect(throws: LedgerError.insufficientBalance) { try await ledger.adjust(.team(team.id), by: credits("-6"), reason: "too much") }
        await #expect(throws: LedgerError.unknownTeam("t00000000")) { try await ledger.adjust(.team("t00000000"), by: credits("1"), reason: "x") }
        await #expect(throws: LedgerError.unknownTeam("t00000000")) { try await ledger.createKey(NewKey(name: "x", teamID: "t00000000")) }
        #expect(try await ledger.keys().isEmpty, "a key for an unknown team is not created")
        #expect(try await ledger.verify().isEmpty)
    }

    @Test(arguments: LedgerStore.available)
    func aMemberSpendsItsOwnCreditsAndItsTeams(store: LedgerStore) async throws {
        let (ledger, _) = try await store.make(clock: ManualClock())
        let team = try await ledger.createTeam(name: "research")
        _ = try await ledger.adjust(.team(team.id), by: credits("1"), reason: "budget")
        let (alice, _) = try await ledger.createKey(NewKey(name: "alice", teamID: team.id))
        let (bob, _) = try await ledger.createKey(NewKey(name: "bob", teamID: team.id))
        #expect(alice.teamID == team.id)
        for key in [alice, bob] { _ = try await ledger.adjust(.key(key.id), by: credits("0.8"), reason: "personal") }
        #expect(try await ledger.balance(of: .key(alice.id)) == Balance(balance: credits("0.8"), held: .zero, teamAvailable: credits("1")))

        // Alice holds 0.6 of her own 0.8 and of the team's 1: she can still spend 0.2, the team 0.4.
        guard case .held(let hold, let available) = try await ledger.reserve(keyID: alice.id, amount: credits("0.6"), expiresAt: .max) else {
            Issue.record("alice's hold was refused")
            return
        }
        #expect(available == credits("0.2"))
        // Bob has 0.8 of his own, but the team only 0.4: refused, and nothing of his is held.
        #expect(try await ledger.reserve(keyID: bob.id, amount: credits("0.5"), expiresAt: .max) == .insufficient(available: credits("0.4")))
        #expect(try await ledger.balance(of: .key(bob.id)) == Balance(balance: credits("0.8"), held: .zero, teamAvailable: credits("0.4")))
        #expect(try await ledger.balance(of: .team(team.id)) == Balance(balance: credits("1"), held: credits("0.6")))

        // Alice is charged 0.5 of her 0.6: both her balance and the team's pay it.
        #expect(try await ledger.post(hold, charge: credits("0.5")) == Balance(balance: credits("0.3"), held: .zero, teamAvailable: credits("0.5")))
        #expect(try await ledger.balance(of: .team(team.id)) == Balance(balance: credits("0.5"), held: .zero))
        guard case .held(let bobs, _) = try await ledger.reserve(keyID: bob.id, amount: credits("0.5"), expiresAt: .max) else {
            Issue.record("bob's hold was refused once the team had 0.5")
            return
        }
        #expect(try await ledger.void(bobs, reason: "backend failed").spendable == credits("0.5"))
        #expect(try await ledger.verify().isEmpty)
    }

    @Test(arguments: LedgerStore.available)
    func expiredHoldsReturnToTheKeyAndTheTeam(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let team = try await ledger.createTeam(name: "ops")
        _ = try await ledger.adjust(.team(team.id), by: credits("2"), reason: "budget")
        let (key, _) = try await ledger.createKey(NewKey(name: "carol", teamID: team.id))
        _ = try await ledger.adjust(.key(key.id), by: credits("2"), reason: "personal")
        _ = try await ledger.reserve(keyID: key.id, amount: credits("1.5"), expiresAt: clock.millisecondsNow + 1000)
        #expect(try await ledger.balance(of: .team(team.id)).held == credits("1.5"))
        clock.advance(by: 1000)
        #expect(try await ledger.expireHolds(now: clock.millisecondsNow) == 1)
        #expect(try await ledger.balance(of: .team(team.id)) == Balance(balance: credits("2"), held: .zero))
        #expect(try await ledger.balance(of: .key(key.id)) == Balance(balance: credits("2"), held: .zero, teamAvailable: credits("2")))
        #expect(try await ledger.verify().isEmpty)
    }

    /// Four members with plenty of their own credits race for a team budget of exactly fifty.
    @Test(arguments: LedgerStore.available)
    func concurrentMembersNeverOverspendTheTeam(store: LedgerStore) async throws {
        let (ledger, _) = try await store.make(clock: ManualClock())
        let team = try await ledger.createTeam(name: "burst")
        _ = try await ledger.adjust(.team(team.id), by: credits("50"), reason: "exactly fifty")
        var members: [String] = []
        for index in 0..<4 {
            let (key, _) = try await ledger.createKey(NewKey(name: "member \(index)", teamID: team.id))
            _ = try await ledger.adjust(.key(key.id), by: credits("100"), reason: "plenty")
            members.append(key.id)
        }
        let outcomes = try await withThrowingTaskGroup(of: Reservation.self) { group in
            for index in 0..<200 {
                let member = members[index % members.count]
                group.addTask { try await ledger.reserve(keyID: member, amount: credits("1"), expiresAt: .max) }
            }
            return try await group.reduce(into: [Reservation]()) { $0.append($1) }
        }
        #expect(outcomes.filter { if case .held = $0 { true } else { false } }.count == 50)
        #expect(try await ledger.balance(of: .team(team.id)) == Balance(balance: credits("50"), held: credits("50")))
        var heldByMembers = Credits.zero
        for member in members { heldByMembers = heldByMembers + (try await ledger.balance(of: .key(member)).held) }
        #expect(heldByMembers == credits("50"), "the members hold exactly what the team holds")
        #expect(try await ledger.verify().isEmpty)
    }

    @Test(arguments: LedgerStore.available)
    func usageIsQueriedByTeam(store: LedgerStore) async throws {
        let (ledger, _) = try await store.make(clock: ManualClock())
        let team = try await ledger.createTeam(name: "video")
        let (member, _) = try await ledger.createKey(NewKey(name: "member", teamID: team.id))
        let (outsider, _) = try await ledger.createKey(NewKey(name: "outsider"))
        for (index, key) in [member, outsider, member].enumerated() {
            try await ledger.record(
                UsageEvent(
                    keyID: key.id, model: "sdxl-img2img", status: 200, cost: credits("0.02"),
                    durationMilliseconds: 900, backend: "local", requestID: "r\(index)", at: Int64(1000 * index)))
        }
        #expect(try await ledger.usage(keyID: nil, teamID: team.id, from: 0, to: 10_000).map(\.requestID) == ["r0", "r2"])
        #expect(try await ledger.usage(keyID: outsider.id, teamID: team.id, from: 0, to: 10_000).isEmpty)
        #expect(try await ledger.usage(keyID: nil, teamID: nil, from: 0, to: 10_000).count == 3)
    }
}

@Suite("Ledger verification of teams (SQLite)")
struct SQLiteTeamVerificationTests {
    @Test func verifyFindsATeamBudgetThatItsEntriesDoNotExplain() async throws {
        let (ledger, path) = try await LedgerStore.sqlite.make(clock: ManualClock())
        let team = try await ledger.createTeam(name: "audit")
        _ = try await ledger.adjust(.team(team.id), by: credits("3"), reason: "budget")
        #expect(try await ledger.verify().isEmpty)
        let edit = try await Command.run("sqlite3", [path, "UPDATE team SET held = held + 1000000"])
        #expect(edit.status == 0, "\(edit.errors)")
        #expect(try await ledger.verify() == ["\(team.id): held 1 but the open holds add up to 0"])
    }
}
