import CoreMetrics
import GenerationCore
import Logging
import TestSupport
import Testing

@testable import Ledger

/// The requests that held nothing (refused before their hold, replayed) are counted, one row per
/// key, model, dialect, status and minute: a key without credits sending thousands a second grows
/// the store by a row a minute, not a row a request. Every request that held credits keeps its
/// own row, and the reports count every request.
@Suite("Ledger contract: counted usage")
struct CountedUsageContractTests {
    static let minute: Int64 = 60_000

    static func gate(_ ledger: any Ledger, clock: ManualClock) -> LedgerGate {
        LedgerGate(
            ledger: ledger, holdLifetime: .seconds(600), clock: clock, logger: Logger(label: "test"),
            metricsFactory: NOOPMetricsHandler.instance)
    }

    static func refusal(_ keyID: String, status: Int, dialect: String, milliseconds: Int64) -> GenerationUsage {
        GenerationUsage(
            keyID: keyID, model: "sdxl", dialect: dialect, status: status, cost: .zero, held: .zero,
            duration: .milliseconds(milliseconds), requestID: "refused")
    }

    /// Through the gate, as the gateway records them: 500 refusals of a key without credits in one
    /// minute (two statuses), 100 in the next; a paying key's three charged requests, one whose work
    /// failed after its hold, and one replay.
    @Test(arguments: LedgerStore.available)
    func refusalsInOneMinuteAreOneRowAndEveryRequestIsTotalled(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let gate = Self.gate(ledger, clock: clock)
        let (poor, _) = try await ledger.createKey(NewKey(name: "poor"))
        let (paying, _) = try await ledger.createKey(NewKey(name: "paying"))
        _ = try await ledger.adjust(.key(paying.id), by: credits("10"), reason: "test")
        let start = clock.millisecondsNow

        for index in 0..<500 {
            let (status, dialect) = index % 5 < 3 ? (406, "segmind") : (429, "openai")
            await gate.recordUsage(Self.refusal(poor.id, status: status, dialect: dialect, milliseconds: Int64(index % 17)))
            if index % 50 == 0 { clock.advance(by: 1_000) }
        }
        for index in 0..<3 {
            guard case .held(let hold, _) = await gate.reserve(credits("0.5"), for: AuthenticatedKey(id: paying.id), queuedUpTo: .zero)
            else { throw LedgerError.insufficientBalance }
            let usage = GenerationUsage(
                keyID: paying.id, model: "sdxl", dialect: "segmind", status: 200, cost: credits("0.5"), held: credits("0.5"),
                duration: .seconds(2), requestID: "charged-\(index)")
            _ = await gate.settle(hold, charge: credits("0.5"), recording: usage)
        }
        await gate.recordUsage(
            GenerationUsage(
                keyID: paying.id, model: "sdxl", dialect: "segmind", status: 502, cost: .zero, held: credits("0.5"),
                duration: .seconds(1), requestID: "failed"))
        await gate.recordUsage(
            GenerationUsage(
                keyID: paying.id, model: "sdxl", dialect: "segmind", status: 200, cost: .zero, held: .zero, duration: .zero,
                requestID: "replayed"))
        clock.advance(by: start + Self.minute - clock.millisecondsNow)
        for _ in 0..<100 { await gate.recordUsage(Self.refusal(poor.id, status: 406, dialect: "segmind", milliseconds: 3)) }

        let scope = UsageScope(from: start, to: start + 2 * Self.minute)
        let rows = try await ledger.usage(scope, latest: .max)
        // The poor key: 406 and 429 in the first minute, 406 in the second; the paying key: three
        // charges, a failure and a replay.
        #expect(rows.count == 3 + 5, "\(rows.count) rows")
        #expect(rows.filter { $0.keyID == poor.id }.count == 3, "\(rows.filter { $0.keyID == poor.id }.count) rows of refusals")
        for requestID in ["charged-0", "charged-1", "charged-2"] {
            #expect(rows.filter { $0.requestID == requestID }.map(\.cost) == [credits("0.5")], "\(requestID)")
        }
        #expect(rows.filter { $0.requestID == "failed" }.map(\.status) == [502], "a request that held credits keeps its row")

        let byKey = try await ledger.usageTotals(scope, by: .key, cuts: [start + Self.minute])
        let expected = [
            UsageTotal(bucket: 0, keyID: poor.id, requests: 500, microCredits: 0),
            UsageTotal(bucket: 1, keyID: poor.id, requests: 100, microCredits: 0),
            UsageTotal(bucket: 0, keyID: paying.id, requests: 5, microCredits: 1_500_000),
        ]
        #expect(Self.sorted(byKey) == Self.sorted(expected))
        let byDialect = try await ledger.usageTotals(UsageScope(keyID: poor.id, from: start, to: start + Self.minute), by: .dialect, cuts: [])
        #expect(
            Self.sorted(byDialect) == [
                UsageTotal(bucket: 0, dialect: "openai", requests: 200, microCredits: 0),
                UsageTotal(bucket: 0, dialect: "segmind", requests: 300, microCredits: 0),
            ])
    }

    /// What a counted row says: its requests, the start of its minute, no request, no cost, the
    /// longest duration; the latest rows list it once, in the order it was made.
    @Test(arguments: LedgerStore.available)
    func aCountedRowCarriesItsCountAndItsMinute(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let gate = Self.gate(ledger, clock: clock)
        let (poor, _) = try await ledger.createKey(NewKey(name: "poor"))
        let start = clock.millisecondsNow
        clock.advance(by: 7_000)
        for index in 0..<40 {
            await gate.recordUsage(Self.refusal(poor.id, status: 406, dialect: "segmind", milliseconds: Int64(index % 9)))
            clock.advance(by: 100)
        }
        clock.advance(by: Self.minute)
        await gate.recordUsage(Self.refusal(poor.id, status: 406, dialect: "segmind", milliseconds: 1))

        let first = UsageEvent(
            keyID: poor.id, model: "sdxl", dialect: "segmind", status: 406, cost: .zero, durationMilliseconds: 8, backend: "",
            requestID: "", at: start, requests: 40, counted: true)
        var second = first
        (second.durationMilliseconds, second.at, second.requests) = (1, start + Self.minute, 1)
        #expect(try await ledger.usage(UsageScope(from: start, to: start + 2 * Self.minute), latest: 10) == [first, second])
        #expect(try await ledger.usage(UsageScope(keyID: poor.id, from: start, to: start + 2 * Self.minute), latest: 1) == [second])
    }

    /// Counts made at once, as replicas and event loops make them, all land in the one row; a
    /// request listed with the very same fields is a row of its own; another key, model, dialect or
    /// status is another row.
    @Test(arguments: LedgerStore.available)
    func concurrentCountsLandInOneRowPerGroup(store: LedgerStore) async throws {
        let clock = ManualClock()
        let (ledger, _) = try await store.make(clock: clock)
        let at = clock.millisecondsNow + 30_000
        let requests = [
            CountedRequest(keyID: "k1", model: "sdxl", dialect: "segmind", status: 406, durationMilliseconds: 1, at: at),
            CountedRequest(keyID: "k2", model: "sdxl", dialect: "segmind", status: 406, durationMilliseconds: 1, at: at),
            CountedRequest(keyID: "k1", model: "flux", dialect: "segmind", status: 406, durationMilliseconds: 1, at: at),
            CountedRequest(keyID: "k1", model: "sdxl", dialect: "openai", status: 406, durationMilliseconds: 1, at: at),
            CountedRequest(keyID: "k1", model: "sdxl", dialect: "segmind", status: 429, durationMilliseconds: 1, at: at),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<1_000 {
                group.addTask { try await ledger.count(requests[index % requests.count]) }
            }
            try await group.waitForAll()
        }
        let listed = UsageEvent(
            keyID: "k1", model: "sdxl", dialect: "segmind", status: 406, cost: .zero, durationMilliseconds: 1, backend: "",
            requestID: "", at: at - 30_000)
        try await ledger.record(listed)
        try await ledger.count(requests[0])

        let rows = try await ledger.usage(UsageScope(from: at - 30_000, to: at + 30_000), latest: .max)
        #expect(rows.count == requests.count + 1, "\(rows)")
        #expect(rows.filter { !$0.counted } == [listed])
        for request in requests {
            let counted = rows.filter {
                $0.counted && ($0.keyID, $0.model, $0.dialect, $0.status) == (request.keyID, request.model, request.dialect, request.status)
            }
            #expect(counted.map(\.requests) == [request == requests[0] ? 201 : 200], "\(request)")
        }
        let totals = try await ledger.usageTotals(UsageScope(from: at - 30_000, to: at + 30_000), by: [], cuts: [])
        #expect(totals == [UsageTotal(bucket: 0, requests: 1_002, microCredits: 0)])
    }

    private static func sorted(_ totals: [UsageTotal]) -> [UsageTotal] {
        totals.sorted { ($0.bucket, $0.keyID ?? "", $0.dialect ?? "") < ($1.bucket, $1.keyID ?? "", $1.dialect ?? "") }
    }
}
