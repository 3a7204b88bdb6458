import Dispatch
import Foundation
import GenerationCore
import GuardedHTTP
import Logging
import Synchronization
import TestSupport
import Testing

@testable import Jobs
@testable import Ledger

/// The dispatcher on a real SQLite store, with the attempt itself (the HTTP POST, tested end to end
/// elsewhere) replaced by answers the test chooses.
@Suite("Webhook dispatcher")
struct WebhookDispatcherTests {
    /// Answers each attempt with the next status of a script (the last one repeats), and counts them.
    final class Receiver: Sendable {
        let script: [Int?]
        let seen = Mutex<[String]>([])

        init(_ script: [Int?]) {
            self.script = script
        }

        func attempt(_ delivery: WebhookDelivery, _ secret: String) -> WebhookDispatcher.Attempt {
            let number = seen.withLock { seen in
                seen.append(secret)
                return seen.count
            }
            let status = script[min(number, script.count) - 1]
            return WebhookDispatcher.Attempt(status: status, error: status == nil ? "connection refused" : nil)
        }
    }

    static func makeStore() async throws -> (SQLiteLedger, keyID: String) {
        let store = try SQLiteLedger(path: Scratch.path("webhooks", pathExtension: "sqlite").path)
        return (store, try await store.createKey(NewKey(name: "hooks")).key.id)
    }

    static func dispatcher(_ store: SQLiteLedger, _ receiver: Receiver, retryFor: Duration = .seconds(60)) -> WebhookDispatcher {
        var settings = WebhookDispatcher.Settings()
        settings.firstRetry = .milliseconds(50)
        settings.retryFor = retryFor
        settings.pollInterval = .milliseconds(20)
        return WebhookDispatcher(store: store, settings: settings, clock: SystemWallClock(), logger: Logger(label: "test")) {
            receiver.attempt($0, $1)
        }
    }

    static func delivery(_ store: SQLiteLedger, job: String) async throws -> WebhookDelivery? {
        try await store.webhookDeliveries(jobID: job).first
    }

    @Test func aRefusedDeliveryIsRetriedUntilItIsTakenAndEveryAttemptRecorded() async throws {
        let (store, keyID) = try await Self.makeStore()
        let receiver = Receiver([500, nil, 503, 204])
        let dispatcher = Self.dispatcher(store, receiver)
        dispatcher.start()
        await dispatcher.enqueue(NewWebhook(keyID: keyID, jobID: "job-1", url: "https://hooks.example", body: Array("{}".utf8)))
        #expect(await eventually(timeout: .seconds(60)) { (try? await Self.delivery(store, job: "job-1"))??.state == .delivered })
        await dispatcher.stop()
        let delivery = try #require(try await Self.delivery(store, job: "job-1"))
        let attempts = try await store.webhookAttempts(deliveryID: delivery.id)
        #expect(attempts.map(\.status) == [500, nil, 503, 204] && attempts.map(\.number) == [1, 2, 3, 4])
        #expect(attempts[1].error == "connection refused")
        // Each wait twice the one before: 50, 100, 200 ms at least between the attempts.
        #expect(zip(attempts.dropFirst(), attempts).map { $0.at - $1.at }.enumerated().allSatisfy { $1 >= 50 << $0 }, "\(attempts.map(\.at))")
        let secret = try await store.webhookSecret(keyID: keyID)
        #expect(receiver.seen.withLock { $0 } == Array(repeating: secret, count: 4), "every attempt signed with the key's secret")
    }

    @Test func aDeliveryThatKeepsFailingIsGivenUpAfterItsRetryTime() async throws {
        // The store and the dispatcher on a clock the test moves: a retry is due only when told.
        let clock = ManualClock()
        let store = try SQLiteLedger(
            path: Scratch.path("webhooks", pathExtension: "sqlite").path,
            clock: clock)
        let keyID = try await store.createKey(NewKey(name: "hooks")).key.id
        var settings = WebhookDispatcher.Settings()
        settings.firstRetry = .milliseconds(50)
        settings.retryFor = .milliseconds(300)
        settings.pollInterval = .milliseconds(20)
        let dispatcher = WebhookDispatcher(store: store, settings: settings, clock: clock, logger: Logger(label: "test")) { _, _ in
            WebhookDispatcher.Attempt(status: 500, error: nil)
        }
        dispatcher.start()
        await dispatcher.enqueue(NewWebhook(keyID: keyID, jobID: "job-2", url: "https://hooks.example", body: []))
        // Attempts at 0, 50 and 150 ms; the next would be at 350, past the 300 ms of retries.
        for (attempts, wait) in [(1, 50), (2, 100)] {
            #expect(await eventually(timeout: .seconds(60)) { (try? await Self.delivery(store, job: "job-2"))??.attempts == attempts })
            #expect(try await Self.delivery(store, job: "job-2")?.nextAttemptAt == clock.millisecondsNow + Int64(wait))
            clock.advance(by: Int64(wait))
        }
        #expect(await eventually(timeout: .seconds(60)) { (try? await Self.delivery(store, job: "job-2"))??.state == .failed })
        await dispatcher.stop()
        let delivery = try #require(try await Self.delivery(store, job: "job-2"))
        let attempts = try await store.webhookAttempts(deliveryID: delivery.id)
        #expect(attempts.count == 3 && attempts.allSatisfy { $0.status == 500 }, "\(attempts)")
    }

    @Test func aDeliveryPendingWhenTheGatewayStopsGoesOutAfterItStartsAgain() async throws {
        let (store, keyID) = try await Self.makeStore()
        // The first gateway's attempt fails and it stops before the retry.
        var settings = WebhookDispatcher.Settings()
        settings.firstRetry = .milliseconds(300)
        settings.pollInterval = .milliseconds(20)
        let first = WebhookDispatcher(store: store, settings: settings, clock: SystemWallClock(), logger: Logger(label: "test")) { _, _ in
            WebhookDispatcher.Attempt(status: 502, error: nil)
        }
        first.start()
        await first.enqueue(NewWebhook(keyID: keyID, jobID: "job-3", url: "https://hooks.example", body: []))
        #expect(await eventually(timeout: .seconds(60)) { (try? await Self.delivery(store, job: "job-3"))??.attempts == 1 })
        await first.stop()
        #expect(try await Self.delivery(store, job: "job-3")?.state == .pending)

        let receiver = Receiver([200])
        let second = Self.dispatcher(store, receiver)
        second.start()
        #expect(await eventually(timeout: .seconds(60)) { (try? await Self.delivery(store, job: "job-3"))??.state == .delivered })
        await second.stop()
        #expect(receiver.seen.withLock { $0.count } == 1)
    }

    @Test func retriesBackOffExponentiallyUpToTheCap() async throws {
        var settings = WebhookDispatcher.Settings()
        settings.firstRetry = .seconds(5)
        settings.maxBackoff = .seconds(60)
        settings.retryFor = .seconds(3600)
        let dispatcher = WebhookDispatcher(
            store: try await Self.makeStore().0, settings: settings, clock: ManualClock(),
            logger: Logger(label: "test")
        ) { _, _ in WebhookDispatcher.Attempt(status: 200, error: nil) }
        let delivery = WebhookDelivery(
            id: "msg_1", keyID: "k", jobID: "j", url: "https://hooks.example", body: [], state: .pending,
            attempts: 0, nextAttemptAt: 0, createdAt: 0, endedAt: nil, recipient: .member)
        #expect((1...6).map { dispatcher.retryTime(after: $0, of: delivery, at: 0) } == [5000, 10_000, 20_000, 40_000, 60_000, 60_000])
        #expect(dispatcher.retryTime(after: 1, of: delivery, at: 3_595_000) == 3_600_000, "the last retry inside retry_for")
        #expect(dispatcher.retryTime(after: 1, of: delivery, at: 3_595_001) == nil)
    }

    @Test func anOperatorsAlertIsSignedWithTheOperatorsSecretAndFailsWithoutOne() async throws {
        let (store, _) = try await Self.makeStore()
        let receiver = Receiver([204])
        var settings = WebhookDispatcher.Settings()
        settings.pollInterval = .milliseconds(20)
        settings.operatorSecret = "whsec_b3BlcmF0b3Itc2VjcmV0LWJ5dGVz"
        let signed = WebhookDispatcher(store: store, settings: settings, clock: SystemWallClock(), logger: Logger(label: "test")) {
            receiver.attempt($0, $1)
        }
        signed.start()
        await signed.enqueue(.toOperator(url: "http://127.0.0.1:9/alerts", body: Array("{}".utf8)))
        #expect(await eventually(timeout: .seconds(60)) { receiver.seen.withLock { $0.count } == 1 })
        await signed.stop()
        #expect(receiver.seen.withLock { $0 } == ["whsec_b3BlcmF0b3Itc2VjcmV0LWJ5dGVz"], "no key's secret: the operator's")

        // Alerts switched off since it was queued: the attempt fails (and is retried), nothing is sent.
        settings.operatorSecret = nil
        let unsigned = WebhookDispatcher(store: store, settings: settings, clock: SystemWallClock(), logger: Logger(label: "test")) {
            receiver.attempt($0, $1)
        }
        unsigned.start()
        let queued = try await store.enqueueWebhook(.toOperator(url: "http://127.0.0.1:9/alerts", body: []))
        #expect(await eventually(timeout: .seconds(60)) { (try? await store.webhookAttempts(deliveryID: queued.id).count) ?? 0 >= 1 })
        await unsigned.stop()
        let attempt = try #require(try await store.webhookAttempts(deliveryID: queued.id).first)
        #expect(attempt.status == nil && attempt.error == "no operator secret is configured (alerts.secret)")
        #expect(receiver.seen.withLock { $0.count } == 1)
    }

    /// A delivery's lookup counts against its key's share of the lookups that may wait on their
    /// servers, as its call's did: it counted against the gateway's only, so a member whose
    /// webhook host never answers could hold up every place, and every image URL was refused.
    @Test func aWebhooksLookupCountsAgainstItsKey() async throws {
        let gate = DispatchSemaphore(value: 0)
        let begun = Atomic<Int>(0)
        let resolver = HostResolver(maxBlocked: 64, maxBlockedPerOwner: 1) { _ in
            begun.add(1, ordering: .relaxed)
            _ = gate.wait(timeout: .now() + .seconds(120))
            return ["127.0.0.1"]
        }
        let sender = WebhookSender(policy: AddressPolicy(allowPrivateAddresses: true), timeout: .seconds(10), resolver: resolver)
        func delivery(_ id: String, key: String) -> WebhookDelivery {
            WebhookDelivery(
                id: id, keyID: key, jobID: "j", url: "http://\(id).example:9/hook", body: Array("{}".utf8), state: .pending,
                attempts: 0, nextAttemptAt: 0, createdAt: 0, endedAt: nil, recipient: .member)
        }
        let first = Task { await sender.send(delivery("msg-1", key: "k-one"), secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") }
        #expect(await eventually(timeout: .seconds(90)) { begun.load(ordering: .relaxed) == 1 })
        let second = await sender.send(delivery("msg-2", key: "k-one"), secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        #expect(second.status == nil && second.error == "the gateway is resolving too many hosts at once; retry shortly", "\(second)")
        #expect(begun.load(ordering: .relaxed) == 1, "the key's second lookup never began")
        gate.signal()
        _ = await first.value
    }

    /// A receiver that answers at once and then sends its body a byte at a time: its status is
    /// its answer, taken when the attempt's time is up rather than once the body ends (it once
    /// held one of the few delivery slots for as long as the receiver kept sending).
    @Test func aReceiverWhoseAnswerTricklesHoldsTheAttemptNoLongerThanItsTimeout() async throws {
        let peer = try DrippingPeer(body: Array(repeating: UInt8(ascii: "."), count: 100))
        let sender = WebhookSender(policy: AddressPolicy(allowPrivateAddresses: true), timeout: .seconds(1))
        let delivery = WebhookDelivery(
            id: "msg_1", keyID: "k", jobID: "j", url: peer.baseURL + "/hook", body: Array("{}".utf8), state: .pending,
            attempts: 0, nextAttemptAt: 0, createdAt: 0, endedAt: nil, recipient: .member)
        let attempt = await sender.send(delivery, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        #expect(attempt.status == 200 && attempt.error == nil, "\(attempt)")
        #expect(!peer.hasSentABodyWhole)
        await peer.shutdown()
    }

}
