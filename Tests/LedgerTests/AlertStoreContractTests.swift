import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// The alerts' part of the ledger, on every store: what an account was funded with since its last
/// top-up, and a subject's state moved by compare-and-set with its alerts queued in the same step,
/// once however many replicas race, and still there when the store is opened again.
@Suite("Alert store contract")
struct AlertStoreContractTests {
    typealias Store = any Ledger & AlertStore & WebhookStore

    func makeStore(_ store: LedgerStore, clock: ManualClock) async throws -> (Store, path: String) {
        let (ledger, path) = try await store.make(clock: clock)
        return (try #require(ledger as? Store), path)
    }

    func charge(_ ledger: Store, _ keyID: String, _ amount: String) async throws {
        guard case .held(let hold, _) = try await ledger.reserve(keyID: keyID, amount: credits(amount), expiresAt: .max) else {
            Issue.record("not held")
            return
        }
        _ = try await ledger.post(hold, charge: credits(amount))
    }

    @Test(arguments: LedgerStore.available)
    func fundingIsTheBalanceRightAfterTheLastTopUpAndWhatWasSpentSince(store: LedgerStore) async throws {
        let (ledger, _) = try await makeStore(store, clock: ManualClock())
        let team = try await ledger.createTeam(name: "studio")
        let (key, _) = try await ledger.createKey(NewKey(name: "a", teamID: team.id))
        #expect(try await ledger.funding(of: .key(key.id)) == nil, "never topped up: nothing to measure")
        _ = try await ledger.adjust(.key(key.id), by: credits("10"), reason: "grant")
        _ = try await ledger.adjust(.team(team.id), by: credits("100"), reason: "budget")
        let first = try #require(try await ledger.funding(of: .key(key.id)))
        #expect(first.funded == credits("10") && first.balance == credits("10") && first.spent == .zero)

        try await charge(ledger, key.id, "3")
        _ = try await ledger.adjust(.key(key.id), by: credits("-1"), reason: "correction")
        let spent = try #require(try await ledger.funding(of: .key(key.id)))
        #expect(spent.funded == credits("10") && spent.spent == credits("4") && spent.lastTopUp == first.lastTopUp, "charges and deductions")
        let teamFunding = try #require(try await ledger.funding(of: .team(team.id)))
        #expect(teamFunding.funded == credits("100") && teamFunding.spent == credits("3"), "the member's charge is the team's too")

        _ = try await ledger.adjust(.key(key.id), by: credits("5"), reason: "top-up")
        let topped = try #require(try await ledger.funding(of: .key(key.id)))
        #expect(topped.funded == credits("11") && topped.spent == .zero && topped.lastTopUp != first.lastTopUp, "a top-up starts anew")
        await #expect(throws: LedgerError.unknownKey("knothere0")) { try await ledger.funding(of: .key("knothere0")) }
        await #expect(throws: LedgerError.unknownTeam("tnothere0")) { try await ledger.funding(of: .team("tnothere0")) }
    }

    @Test(arguments: LedgerStore.available)
    func aStateMovesOnlyFromWhatItWasAndQueuesItsAlertsWithIt(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, path) = try await makeStore(store, clock: clock)
        let alert = NewWebhook.toOperator(url: "http://127.0.0.1:9/alerts", body: Array(#"{"type":"worker.down"}"#.utf8))
        #expect(try await ledger.alertState(subject: "worker:h/0") == nil)
        let down = AlertState(epoch: "", level: 1)
        #expect(try await ledger.moveAlertState(subject: "worker:h/0", from: nil, to: down, queueing: [alert]))
        #expect(
            try await ledger.moveAlertState(subject: "worker:h/0", from: nil, to: down, queueing: [alert]) == false,
            "moved already: nothing changes, nothing is queued")
        #expect(try await ledger.alertState(subject: "worker:h/0") == down)

        let claimed = try #require(try await ledger.claimDueWebhook(now: clock.millisecondsNow, leaseUntil: clock.millisecondsNow + 1000))
        #expect(claimed.recipient == .operator && claimed.keyID.isEmpty && claimed.jobID.isEmpty && claimed.body == alert.body)
        #expect(
            try await ledger.claimDueWebhook(now: clock.millisecondsNow + 999, leaseUntil: .max) == nil, "one delivery queued, not two")

        let wrong = AlertState(epoch: "", level: 0)
        #expect(try await ledger.moveAlertState(subject: "worker:h/0", from: wrong, to: AlertState(epoch: "", level: 5), queueing: []) == false)
        #expect(try await ledger.moveAlertState(subject: "worker:h/0", from: down, to: wrong, queueing: []))
        #expect(try await ledger.moveAlertState(subject: "key-credits:k1", from: nil, to: AlertState(epoch: "topup:3", level: 2), queueing: []))

        // Another process opening the same store (a restart, a replica) finds the states as they were.
        let reopened = try #require(try await store.open(path, clock: clock) as? Store)
        #expect(try await reopened.alertState(subject: "worker:h/0") == wrong)
        #expect(try await reopened.alertState(subject: "key-credits:k1") == AlertState(epoch: "topup:3", level: 2))
        #expect(
            try await reopened.alertStateCounts() == [
                AlertStateCount(kind: "key-credits", level: 2, count: 1), AlertStateCount(kind: "worker", level: 0, count: 1),
            ])
    }

    @Test(arguments: LedgerStore.available)
    func racingReplicasMoveAStateOnceAndQueueItsAlertOnce(store: LedgerStore) async throws {
        let (ledger, _) = try await makeStore(store, clock: ManualClock())
        let alert = NewWebhook.toOperator(url: "http://127.0.0.1:9/alerts", body: [])
        let moved = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await ledger.moveAlertState(
                        subject: "upstream:segmind", from: nil, to: AlertState(epoch: "", level: 1), queueing: [alert, alert])
                }
            }
            return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(moved == 1)
        var queued = 0
        while try await ledger.claimDueWebhook(now: .max - 1, leaseUntil: .max) != nil { queued += 1 }
        #expect(queued == 2, "the winner's two deliveries (two receivers), no one else's")
    }
}
