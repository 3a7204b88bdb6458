import Backends
import GenerationCore
import Logging
import MetricsTestKit
import TestSupport
import Testing
import UpstreamProxy

/// The per-model route over backends of any kind: fallback, spill-over, passing on only what was
/// not sent, and the name each result is recorded under.
@Suite("Routed backend")
struct RoutedBackendTests {
    static let request = BackendSubject.request

    static func routed(_ entries: [(String, StubBackend)], fallback: StubBackend = StubBackend(), spillOverQueue: Int? = nil) -> RoutedBackend {
        RoutedBackend(
            routes: [request.model: entries.map { RouteEntry(name: $0.0, backend: $0.1) }], fallback: fallback,
            spillOverQueue: spillOverQueue, logger: Logger(label: "test"))
    }

    /// Runs `body` with an upstream over a fake Segmind, and shuts both down however it ends.
    static func withSegmind(
        metrics: TestMetrics = TestMetrics(),
        _ body: (FakeSegmindUpstream, UpstreamBackend) async throws -> Void
    ) async throws {
        let fake = try FakeSegmindUpstream()
        let upstream = UpstreamBackend(
            Upstream(name: "segmind", dialect: .segmind, baseURL: fake.baseURL, key: UpstreamKey(fake.key)),
            logger: Logger(label: "test"), metrics: metrics)
        do {
            try await body(fake, upstream)
        } catch {
            await upstream.shutdown()
            await fake.shutdown()
            throw error
        }
        await upstream.shutdown()
        await fake.shutdown()
    }

    @Test func aModelWithoutARouteGoesToTheFallback() async throws {
        let fallback = StubBackend(), routed = StubBackend()
        var request = Self.request
        request.model = "unrouted"
        let result = try await Self.routed([("first", routed)], fallback: fallback).generate(request)
        #expect(fallback.sent == 1 && routed.sent == 0)
        #expect(result.upstream == nil, "no route named a backend")
    }

    @Test func aLongQueueSpillsOverToTheNextEntryButNeverPastTheLast() async throws {
        let local = StubBackend(), upstream = StubBackend()
        local.queued = 3
        let spilled = try await Self.routed([("local", local), ("up", upstream)], spillOverQueue: 2).generate(Self.request)
        #expect(spilled.upstream?.name == "up" && local.sent == 0 && upstream.sent == 1)

        // At the limit, or without spill-over, the first entry keeps it.
        local.queued = 2
        #expect(try await Self.routed([("local", local), ("up", upstream)], spillOverQueue: 2).generate(Self.request).upstream?.name == "local")
        local.queued = 50
        #expect(try await Self.routed([("local", local), ("up", upstream)]).generate(Self.request).upstream?.name == "local")
        // The last entry serves however long its queue: there is nowhere else to go.
        #expect(try await Self.routed([("local", local)], spillOverQueue: 0).generate(Self.request).upstream?.name == "local")
        #expect(local.sent == 3 && upstream.sent == 1)
    }

    @Test func onlyWhatWasNotSentPassesOn() async throws {
        let first = StubBackend(), second = StubBackend()
        first.fail(.notSent)
        #expect(try await Self.routed([("first", first), ("second", second)]).generate(Self.request).upstream?.name == "second")

        first.fail(.failed(.busy(retryAfter: .seconds(3))))
        await #expect(throws: InferenceError.busy(retryAfter: .seconds(3))) {
            try await Self.routed([("first", first), ("second", second)]).generate(Self.request)
        }
        #expect(second.sent == 1, "the request the first entry had was not sent again")

        second.fail(.notSent)
        first.fail(.notSent)
        await #expect(throws: InferenceError.failed("no upstream for model '\(Self.request.model)' could be reached")) {
            try await Self.routed([("first", first), ("second", second)]).generate(Self.request)
        }
    }

    /// An upstream's own report (what it charged the team) survives; the name is the route's.
    @Test func aResultCarriesItsEntrysNameAndWhatTheUpstreamReported() async throws {
        try await Self.withSegmind { fake, upstream in
            let routed = RoutedBackend(
                routes: [Self.request.model: [RouteEntry(name: "segmind", backend: upstream)]], fallback: StubBackend(),
                spillOverQueue: nil, logger: Logger(label: "test"))
            let result = try await routed.generate(Self.request)
            #expect(result.upstream == UpstreamReport(name: "segmind", cost: fake.cost, remainingCredits: fake.remainingCredits))
        }
    }

    /// Calls one after another share one kept-alive connection: each call opening its own would
    /// add a connection's set-up to every request the gateway proxies.
    @Test func callsOneAfterAnotherShareOneConnection() async throws {
        try await Self.withSegmind { fake, upstream in
            for _ in 0..<8 { _ = try await upstream.generate(Self.request) }
            #expect(fake.received.count == 8)
            #expect(Set(fake.received.map(\.peer)).count == 1, "\(fake.received.map(\.peer))")
        }
    }

    /// `sdgate_upstream_duration_seconds{upstream}` per generation served,
    /// `sdgate_upstream_errors_total{upstream,kind}` per failure, none for a call whose client left.
    @Test func anUpstreamCountsWhatItServedAndHowItFailed() async throws {
        let metrics = TestMetrics()
        try await Self.withSegmind(metrics: metrics) { fake, upstream in
            let name = ("upstream", "segmind")
            _ = try await upstream.generate(Self.request)
            #expect(try metrics.expectTimer("sdgate_upstream_duration_seconds", [name]).values.count == 1)

            fake.misbehave(.rejectKey)
            await #expect(throws: InferenceError.self) { try await upstream.generate(Self.request) }
            #expect(metrics.counterTotal(label: "sdgate_upstream_errors_total", dimensions: [name, ("kind", "rejected_key")]) == 1)

            // The client leaves while the upstream stalls; the stall then ends in an error of the upstream's.
            fake.misbehave(.stall)
            let call = Task { try await upstream.generate(Self.request) }
            #expect(await eventually { fake.stalledCount == 1 })
            call.cancel()
            fake.misbehave(.serverError)
            await #expect(throws: InferenceError.self) { try await call.value }
            #expect(metrics.counterTotal(label: "sdgate_upstream_errors_total") == 1, "a call whose client left is not counted")

        }
        let gone = try RefusingLoopbackPort()
        let unreachable = UpstreamBackend(
            Upstream(name: "gone", dialect: .segmind, baseURL: gone.baseURL, key: UpstreamKey("k")),
            logger: Logger(label: "test"), metrics: metrics)
        await #expect(throws: InferenceError.failed("the upstream could not be reached")) { try await unreachable.generate(Self.request) }
        #expect(metrics.counterTotal(label: "sdgate_upstream_errors_total", dimensions: [("upstream", "gone"), ("kind", "unreachable")]) == 1)
        withExtendedLifetime(gone) {}
        await unreachable.shutdown()
    }
}
