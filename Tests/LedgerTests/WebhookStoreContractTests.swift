import Foundation
import GenerationCore
import TestSupport
import Testing

@testable import Ledger

/// Webhook deliveries, on both stores: a secret per key, due deliveries claimed once and leased,
/// every attempt on record, and a delivery that outlives the gateway that made it.
@Suite("Webhook store contract")
struct WebhookStoreContractTests {
    func makeStore(_ store: LedgerStore, clock: ManualClock) async throws -> (any Ledger & WebhookStore) {
        try #require(try await store.make(clock: clock).0 as? any Ledger & WebhookStore)
    }

    @Test(arguments: LedgerStore.available)
    func eachKeyHasOneSecretMadeOnFirstUse(store: LedgerStore) async throws {
        let ledger = try await makeStore(store, clock: ManualClock())
        let (key, _) = try await ledger.createKey(NewKey(name: "a"))
        let (other, _) = try await ledger.createKey(NewKey(name: "b"))
        let secret = try await ledger.webhookSecret(keyID: key.id)
        #expect(secret.hasPrefix("whsec_") && Data(base64Encoded: String(secret.dropFirst(6)))?.count == 24)
        #expect(try await ledger.webhookSecret(keyID: key.id) == secret, "the same secret every time")
        #expect(try await ledger.webhookSecret(keyID: other.id) != secret)
        await #expect(throws: LedgerError.unknownKey("knothere0")) { try await ledger.webhookSecret(keyID: "knothere0") }
    }

    @Test(arguments: LedgerStore.available)
    func aDueDeliveryIsClaimedOnceLeasedRetriedAndRecorded(store: LedgerStore) async throws {
        let clock = ManualClock()
        let ledger = try await makeStore(store, clock: clock)
        let queued = try await ledger.enqueueWebhook(
            NewWebhook(
                keyID: "kaaaaaaaa", jobID: "job-1", url: "https://hooks.example/a",
                body: Array(#"{"status":"success"}"#.utf8)))
        #expect(queued.id.hasPrefix("msg_") && queued.state == .pending && queued.attempts == 0 && queued.nextAttemptAt == clock.millisecondsNow)

        let claimed = try #require(try await ledger.claimDueWebhook(now: clock.millisecondsNow, leaseUntil: clock.millisecondsNow + 30_000))
        #expect(claimed.id == queued.id && claimed.body == queued.body)
        #expect(try await ledger.claimDueWebhook(now: clock.millisecondsNow + 29_999, leaseUntil: clock.millisecondsNow + 60_000) == nil, "leased")
        // The gateway died mid-attempt: once the lease runs out, the delivery is due again.
        #expect(try await ledger.claimDueWebhook(now: clock.millisecondsNow + 30_000, leaseUntil: clock.millisecondsNow + 60_000)?.id == queued.id)

        clock.advance(by: 1000)
        try await ledger.recordWebhookAttempt(
            WebhookAttempt(
                deliveryID: queued.id, number: 1, at: clock.millisecondsNow, status: 500, error: nil,
                durationMilliseconds: 12), then: .retry(at: clock.millisecondsNow + 5000))
        #expect(
            try await ledger.claimDueWebhook(now: clock.millisecondsNow + 4999, leaseUntil: clock.millisecondsNow + 60_000) == nil,
            "not due before its retry")
        #expect(try await ledger.claimDueWebhook(now: clock.millisecondsNow + 5000, leaseUntil: clock.millisecondsNow + 60_000)?.attempts == 1)
        clock.advance(by: 5000)
        try await ledger.recordWebhookAttempt(
            WebhookAttempt(
                deliveryID: queued.id, number: 2, at: clock.millisecondsNow, status: 204, error: nil,
                durationMilliseconds: 7), then: .delivered)
        #expect(try await ledger.claimDueWebhook(now: .max, leaseUntil: .max) == nil, "delivered: never due again")

        let deliveries = try await ledger.webhookDeliveries(jobID: "job-1")
        #expect(
            deliveries.count == 1 && deliveries[0].state == .delivered && deliveries[0].attempts == 2
                && deliveries[0].endedAt == clock.millisecondsNow)
        let attempts = try await ledger.webhookAttempts(deliveryID: queued.id)
        #expect(attempts.map(\.status) == [500, 204] && attempts.map(\.number) == [1, 2] && attempts[0].durationMilliseconds == 12)

        try await ledger.purgeWebhooks(endedBefore: clock.millisecondsNow)
        #expect(try await ledger.webhookDeliveries(jobID: "job-1").count == 1, "ended at the cutoff, not before")
        try await ledger.purgeWebhooks(endedBefore: clock.millisecondsNow + 1)
        #expect(try await ledger.webhookDeliveries(jobID: "job-1").isEmpty)
        #expect(try await ledger.webhookAttempts(deliveryID: queued.id).isEmpty, "its attempts went with it")
    }

    @Test(arguments: LedgerStore.available)
    func aDeliveryWhoseRetriesRunOutFailsAndIsKept(store: LedgerStore) async throws {
        let clock = ManualClock()
        let ledger = try await makeStore(store, clock: clock)
        let queued = try await ledger.enqueueWebhook(NewWebhook(keyID: "kaaaaaaaa", jobID: "job-2", url: "https://hooks.example/b", body: []))
        _ = try await ledger.claimDueWebhook(now: clock.millisecondsNow, leaseUntil: clock.millisecondsNow + 1000)
        try await ledger.recordWebhookAttempt(
            WebhookAttempt(
                deliveryID: queued.id, number: 1, at: clock.millisecondsNow, status: nil,
                error: "connection refused", durationMilliseconds: 1), then: .failed)
        let failed = try #require(try await ledger.webhookDeliveries(jobID: "job-2").first)
        #expect(failed.state == .failed && failed.nextAttemptAt == nil)
        #expect(try await ledger.webhookAttempts(deliveryID: queued.id).first?.error == "connection refused")
        #expect(try await ledger.claimDueWebhook(now: .max, leaseUntil: .max) == nil)
    }

    /// A key whose receiver never answers keeps hundreds of deliveries due; claimed oldest-due
    /// first, they held every attempt slot ahead of other members' webhooks and the operator's
    /// alerts for as long as they were retried.
    @Test(arguments: LedgerStore.available)
    func aKeyWithManyDueDeliveriesDelaysNeitherAnotherKeyNorTheOperator(store: LedgerStore) async throws {
        let clock = ManualClock()
        let ledger = try await makeStore(store, clock: clock)
        var names: [String: String] = [:]
        func queue(_ webhook: NewWebhook, as name: String) async throws {
            names[try await ledger.enqueueWebhook(webhook).id] = name
            clock.advance(by: 10)
        }
        for index in 0..<5 {
            try await queue(NewWebhook(keyID: "kflooder", jobID: "f\(index)", url: "https://silent.example", body: []), as: "f\(index)")
        }
        let first = try #require(try await ledger.claimDueWebhook(now: clock.millisecondsNow, leaseUntil: .max))
        #expect(names[first.id] == "f0", "alone, the flooder's oldest goes first")
        try await queue(NewWebhook(keyID: "kpatient", jobID: "p0", url: "https://hooks.example", body: []), as: "p0")
        try await queue(NewWebhook(keyID: "kpatient", jobID: "p1", url: "https://hooks.example", body: []), as: "p1")
        try await queue(.toOperator(url: "https://ops.example", body: []), as: "alert")

        var claimed: [String] = []
        while let next = try await ledger.claimDueWebhook(now: clock.millisecondsNow, leaseUntil: .max) { claimed.append(names[next.id] ?? next.id) }
        // The operator's first; then the keys in turns, the key whose last claim is the oldest first.
        #expect(claimed == ["alert", "p0", "f1", "p1", "f2", "f3", "f4"])
    }

    @Test(arguments: LedgerStore.available)
    func racingClaimersTakeEachDueDeliveryOnce(store: LedgerStore) async throws {
        let ledger = try await makeStore(store, clock: ManualClock())
        var queued: Set<String> = []
        for index in 0..<20 {
            queued.insert(try await ledger.enqueueWebhook(NewWebhook(keyID: "k", jobID: "j\(index)", url: "https://hooks.example", body: [])).id)
        }
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var mine: [String] = []
                    while let delivery = try await ledger.claimDueWebhook(now: .max - 1, leaseUntil: .max) { mine.append(delivery.id) }
                    return mine
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(claimed.count == 20 && Set(claimed) == queued)
    }
}
