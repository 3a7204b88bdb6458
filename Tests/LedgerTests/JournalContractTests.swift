import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// The journal: every entry of keys and teams, in one order, a page at a time, whatever the store.
@Suite("Ledger contract: journal")
struct JournalContractTests {
    @Test(arguments: LedgerStore.available)
    func everyEntryOnceInOrderWhateverThePageSize(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let start = clock.millisecondsNow
        let team = try await ledger.createTeam(name: "studio")
        let (member, _) = try await ledger.createKey(NewKey(name: "member", teamID: team.id))
        let (solo, _) = try await ledger.createKey(NewKey(name: "solo"))
        _ = try await ledger.adjust(.team(team.id), by: credits("10"), reason: "budget, March")
        _ = try await ledger.adjust(.key(member.id), by: credits("5"), reason: "grant")
        _ = try await ledger.adjust(.key(solo.id), by: credits("3"), reason: "=HYPERLINK(\"x\")")

        clock.advance(by: 1000)
        guard case .held(let charged, _) = try await ledger.reserve(keyID: member.id, amount: credits("1"), expiresAt: .max),
            case .held(let voided, _) = try await ledger.reserve(keyID: solo.id, amount: credits("1"), expiresAt: .max)
        else {
            Issue.record("a hold was refused")
            return
        }
        _ = try await ledger.post(charged, charge: credits("0.5"))
        _ = try await ledger.void(voided, reason: "backend failed")
        clock.advance(by: 1000)
        _ = try await ledger.adjust(.key(solo.id), by: credits("-1"), reason: "correction")

        let all = try await ledger.journal(from: start, to: .max, after: nil, limit: 100)
        #expect(all.map(\.kind).sorted() == ["adjustment", "post", "post", "topup", "topup", "topup"], "a voided hold moves nothing")
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.position < $1.position }, "in order, each once")
        // What the journal says each account received and spent is its balance.
        for account in [Account.key(member.id), .key(solo.id), .team(team.id)] {
            let total = all.filter { $0.account == account }.reduce(Credits.zero) { $0 + $1.amount }
            #expect(total == (try await ledger.balance(of: account)).balance, "\(account)")
        }
        let posts = all.filter { $0.kind == "post" }
        #expect(posts.map(\.account) == [.key(member.id), .team(team.id)], "a member's charge: its own entry, then its team's")
        #expect(posts.allSatisfy { $0.holdID == charged.rawValue && $0.amount == credits("-0.5") && $0.at == start + 1000 })
        #expect(all.contains { $0.reason == "=HYPERLINK(\"x\")" }, "reasons come back as they were written")

        for pageSize in 1...4 {
            var paged: [JournalEntry] = []
            while true {
                let page = try await ledger.journal(from: start, to: .max, after: paged.last?.position, limit: pageSize)
                paged += page
                if page.count < pageSize { break }
            }
            #expect(paged == all, "pages of \(pageSize)")
        }
        #expect(try await ledger.journal(from: start + 1000, to: start + 2000, after: nil, limit: 100) == posts)
        #expect(try await ledger.journal(from: start, to: .max, after: nil, limit: 0).isEmpty)
    }
}
