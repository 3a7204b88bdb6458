import Foundation
import GenerationCore
import Logging
import TestSupport
import Testing

@testable import Jobs
@testable import Ledger

/// The alert monitor on a real SQLite ledger: what it queues for the operator as keys spend,
/// upstreams report and workers come and go. The deliveries themselves are the dispatcher's
/// (tested with it, and end to end through `sdgate serve`).
@Suite("Alert monitor")
struct AlertMonitorTests {
    static let urls = ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]

    static func makeLedger() throws -> SQLiteLedger {
        try SQLiteLedger(path: Scratch.path("alerts", pathExtension: "sqlite").path)
    }

    static func monitor(_ ledger: SQLiteLedger, lowCredits: String? = nil) -> AlertMonitor {
        let measures = SpendingMeasures(ledger: ledger)
        return AlertMonitor(
            settings: .init(urls: urls, thresholds: [80, 100], upstreamLowCredits: lowCredits.flatMap { Credits(decimal: $0) }, host: "gpu-1"),
            store: ledger, measures: { keyID throws(LedgerError) in try await measures.after(chargeTo: keyID) }, logger: Logger(label: "test"))
    }

    /// The alerts queued since the last call, one per alert (each is queued once per receiver).
    static func queued(_ ledger: SQLiteLedger) async throws -> [[String: Any]] {
        var bodies: [[String: Any]] = []
        while let delivery = try await ledger.claimDueWebhook(now: .max - 1, leaseUntil: .max) {
            #expect(delivery.recipient == .operator)
            if delivery.url == urls[0] { bodies.append(try #require(try JSONSerialization.jsonObject(with: Data(delivery.body)) as? [String: Any])) }
            try await ledger.recordWebhookAttempt(
                WebhookAttempt(deliveryID: delivery.id, number: 1, at: 0, status: 204, error: nil, durationMilliseconds: 0), then: .delivered)
        }
        return bodies
    }

    static func spend(_ ledger: SQLiteLedger, _ monitor: AlertMonitor, _ keyID: String, _ amount: String) async throws {
        guard case .held(let hold, _) = try await ledger.reserve(keyID: keyID, amount: Credits(decimal: amount)!, expiresAt: .max) else {
            Issue.record("not held")
            return
        }
        _ = try await ledger.post(hold, charge: Credits(decimal: amount)!)
        monitor.charged(keyID: keyID, upstream: nil)
        await monitor.evaluatePending()
    }

    static func thresholds(_ bodies: [[String: Any]]) -> [Int] {
        bodies.compactMap { ($0["data"] as? [String: Any])?["threshold"] as? Int }
    }

    @Test func eachThresholdIsAlertedOncePerCrossingAndATopUpRearmsThem() async throws {
        let ledger = try Self.makeLedger(), monitor = Self.monitor(ledger)
        let key = try await ledger.createKey(NewKey(name: "ada")).key
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "10")!, reason: "grant")

        try await Self.spend(ledger, monitor, key.id, "5")
        #expect(try await Self.queued(ledger).isEmpty, "50 %: below every threshold")
        try await Self.spend(ledger, monitor, key.id, "3")
        let eighty = try await Self.queued(ledger)
        #expect(Self.thresholds(eighty) == [80], "\(eighty)")
        let data = try #require(eighty.first?["data"] as? [String: Any])
        #expect(eighty.first?["type"] as? String == "credits.threshold" && eighty.first?["timestamp"] is String)
        #expect(
            data["account"] as? String == "key" && data["id"] as? String == key.id && data["measure"] as? String == "credits"
                && data["used"] as? String == "8" && data["limit"] as? String == "10" && data["percent"] as? Int == 80)
        try await Self.spend(ledger, monitor, key.id, "1")
        #expect(try await Self.queued(ledger).isEmpty, "90 %: 80 % was alerted already")
        try await Self.spend(ledger, monitor, key.id, "1")
        #expect(Self.thresholds(try await Self.queued(ledger)) == [100])

        // A top-up re-arms them: a new crossing is alerted again.
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "10")!, reason: "top-up")
        try await Self.spend(ledger, monitor, key.id, "1")
        #expect(try await Self.queued(ledger).isEmpty)
        try await Self.spend(ledger, monitor, key.id, "9")
        #expect(Self.thresholds(try await Self.queued(ledger)) == [80, 100], "one charge past both: each is alerted")

        // A top-up the very next charge spends whole: no evaluation saw it, and still it re-armed them.
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "1")!, reason: "top-up")
        try await Self.spend(ledger, monitor, key.id, "1")
        #expect(Self.thresholds(try await Self.queued(ledger)) == [80, 100])
    }

    @Test func aTeamsBudgetIsWatchedThroughItsMembersCharges() async throws {
        let ledger = try Self.makeLedger(), monitor = Self.monitor(ledger)
        let team = try await ledger.createTeam(name: "studio")
        let key = try await ledger.createKey(NewKey(name: "bo", teamID: team.id)).key
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "100")!, reason: "grant")
        _ = try await ledger.adjust(.team(team.id), by: Credits(decimal: "10")!, reason: "budget")
        try await Self.spend(ledger, monitor, key.id, "8")
        let alerts = try await Self.queued(ledger)
        #expect(alerts.count == 1 && (alerts.first?["data"] as? [String: Any])?["account"] as? String == "team", "\(alerts)")
    }

    @Test func aPeriodBudgetIsWatchedAndEachNewPeriodRearmsIt() async throws {
        let clock = ManualClock()
        let ledger = try SQLiteLedger(
            path: Scratch.path("alerts", pathExtension: "sqlite").path, clock: clock)
        let monitor = Self.monitor(ledger)
        let key = try await ledger.createKey(NewKey(name: "cy")).key
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "100")!, reason: "grant")
        let daily = try PeriodBudget.checked(period: .day, amount: Credits(decimal: "10")!).get()
        _ = try await ledger.setBudget(daily, of: .key(key.id))

        try await Self.spend(ledger, monitor, key.id, "8")
        let eighty = try await Self.queued(ledger)
        let data = try #require(eighty.first?["data"] as? [String: Any])
        #expect(eighty.count == 1 && data["measure"] as? String == "period" && data["percent"] as? Int == 80, "8 of the day's 10; 8 % of the credits")
        try await Self.spend(ledger, monitor, key.id, "2")
        #expect(Self.thresholds(try await Self.queued(ledger)) == [100])

        clock.advance(by: 86_400_000)
        try await Self.spend(ledger, monitor, key.id, "8")
        #expect(Self.thresholds(try await Self.queued(ledger)) == [80], "the next day re-arms the thresholds")
    }

    /// A day's budget lowered to one micro-credit after 100,000,000,000 credits were spent in the
    /// day, then a charge whose hold came before: its use is 10^19 % of the budget, which no Int64
    /// holds. Both thresholds are alerted, with the percentage at the most a JSON number holds
    /// exactly (its conversion trapped and ended the gateway).
    @Test func aUseTooManyTimesItsLimitForInt64IsAlertedWithAPercentageThatFits() async throws {
        let ledger = try Self.makeLedger(), monitor = Self.monitor(ledger)
        let key = try await ledger.createKey(NewKey(name: "dee")).key
        _ = try await ledger.adjust(.key(key.id), by: .maximum, reason: "grant")
        _ = try await ledger.setBudget(try PeriodBudget.checked(period: .day, amount: .maximum).get(), of: .key(key.id))
        try await Self.spend(ledger, monitor, key.id, "100000000000")
        #expect(try await Self.queued(ledger).isEmpty, "10 % of the day's budget, 10 % of the credits")
        guard case .held(let late, _) = try await ledger.reserve(keyID: key.id, amount: Credits(decimal: "1")!, expiresAt: .max) else {
            Issue.record("not held")
            return
        }
        let lowered = try PeriodBudget.checked(period: .day, amount: Credits(microCredits: 1)).get()
        #expect(try await ledger.setBudget(lowered, of: .key(key.id)).period?.spent == Credits(decimal: "100000000001")!)
        _ = try await ledger.post(late, charge: Credits(decimal: "1")!)
        monitor.charged(keyID: key.id, upstream: nil)
        await monitor.evaluatePending()

        let alerts = try await Self.queued(ledger)
        #expect(Self.thresholds(alerts) == [80, 100], "\(alerts)")
        let data = try #require(alerts.first?["data"] as? [String: Any])
        #expect(data["measure"] as? String == "period" && data["used"] as? String == "100000000001" && data["limit"] as? String == "0.000001")
        #expect(data["percent"] as? Int == (1 << 53) - 1, "\(data)")
    }

    @Test func replicasEvaluatingTheSameChargeAlertOnce() async throws {
        let ledger = try Self.makeLedger()
        let replicas = [Self.monitor(ledger), Self.monitor(ledger), Self.monitor(ledger)]
        let key = try await ledger.createKey(NewKey(name: "cy")).key
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "1")!, reason: "grant")
        try await Self.spend(ledger, replicas[0], key.id, "1")
        for replica in replicas {
            replica.charged(keyID: key.id, upstream: nil)
            await replica.evaluatePending()
        }
        #expect(Self.thresholds(try await Self.queued(ledger)) == [80, 100])
    }

    @Test func workersAndUpstreamsGoingDownAndComingBackAreEachAlertedOnce() async throws {
        let ledger = try Self.makeLedger(), monitor = Self.monitor(ledger)
        func events() async throws -> [String] { try await Self.queued(ledger).compactMap { $0["type"] as? String }.sorted() }
        monitor.worker(0, up: true)
        await monitor.evaluatePending()
        #expect(try await events().isEmpty, "up, as expected")
        monitor.worker(0, up: false)
        await monitor.evaluatePending()
        monitor.worker(0, up: false)
        monitor.upstream("segmind", reachable: false)
        await monitor.evaluatePending()
        #expect(try await events() == ["upstream.down", "worker.down"])
        monitor.worker(0, up: true)
        monitor.upstream("segmind", reachable: true)
        await monitor.evaluatePending()
        #expect(try await events() == ["upstream.up", "worker.up"])
    }

    @Test func anUpstreamReportingLowCreditsIsAlertedOnceUntilItIsToppedUp() async throws {
        let ledger = try Self.makeLedger(), monitor = Self.monitor(ledger, lowCredits: "50")
        let key = try await ledger.createKey(NewKey(name: "di")).key
        func report(_ remaining: String) async throws -> [[String: Any]] {
            monitor.charged(keyID: key.id, upstream: UpstreamReport(name: "segmind", remainingCredits: remaining))
            await monitor.evaluatePending()
            return try await Self.queued(ledger)
        }
        #expect(try await report("120.5").isEmpty)
        let low = try await report("49.9")
        #expect(low.first?["type"] as? String == "upstream.credits_low" && low.count == 1)
        #expect((low.first?["data"] as? [String: Any])?["remaining_credits"] as? String == "49.9")
        #expect(try await report("12").isEmpty, "still low: alerted already")
        #expect(try await report("not a number").isEmpty, "an answer that is no number is ignored")
        #expect(try await report("500").isEmpty, "topped up: re-armed, nothing to say")
        #expect(try await report("1").count == 1)
    }
}
