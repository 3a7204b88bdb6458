import Backends
import GenerationCore
import Logging
import TestSupport
import Testing
import UpstreamProxy

/// What every backend promises the dialects, checked alike against each kind (see `BackendSubject`).
@Suite("Backend contract", .serialized)
struct BackendContractTests {
    @Test(arguments: BackendSubject.allCases)
    func deliversTheSamplesOfTheRequestedSizeAndReportsTheSeed(subject: BackendSubject) async throws {
        try await subject.with { harness in
            let request = BackendSubject.request
            let result = try await harness.backend.generate(request)
            #expect(result.images.count == request.samples)
            for image in result.images {
                let info = try #require(ImageInspector.inspect(image.bytes), "an image the gateway can read")
                #expect(info.width == request.width && info.height == request.height)
                #expect(info.format == image.format, "the format it reports is the image's")
            }
            #expect(result.seed == request.seed)
        }
    }

    @Test(arguments: BackendSubject.allCases)
    func aFailureIsATypedErrorWithAClientSafeMessageAndTheBackendServesOn(subject: BackendSubject) async throws {
        try await subject.with { harness in
            try harness.breakIt()
            do {
                let result = try await harness.backend.generate(BackendSubject.request)
                Issue.record("a broken backend answered \(result.images.count) images")
            } catch let error as InferenceError {
                guard case .failed(let message) = error else {
                    Issue.record("expected a failure, got \(error)")
                    return
                }
                #expect(!message.isEmpty && message.count <= 400)
                for secret in harness.secrets { #expect(!message.contains(secret), "\(message) shows \(secret)") }
            }
            try harness.heal()
            let result = try await harness.backend.generate(BackendSubject.request)
            #expect(result.images.count == BackendSubject.request.samples)
        }
    }

    /// Once a backend has a request, the request runs to its end even if its caller is cancelled
    /// (its client left): the team pays for the work, so its result comes back to be charged.
    @Test(arguments: BackendSubject.allCases)
    func aSentRequestRunsToItsEndThoughItsCallerWasCancelled(subject: BackendSubject) async throws {
        try await subject.with { harness in
            try harness.hold()
            let backend = harness.backend
            let call = Task { try await backend.generate(BackendSubject.request) }
            #expect(await eventually(timeout: .seconds(30)) { harness.isHolding() }, "the request reached the backend")
            call.cancel()
            try harness.release()
            let result = try await call.value
            #expect(result.images.count == BackendSubject.request.samples && result.seed == BackendSubject.request.seed)
        }
    }

    /// A backend that may take any time (an upstream, a worker) answers `timedOut` at its deadline.
    @Test(arguments: [BackendSubject.segmind, .modelslab, .local])
    func aRequestPastTheDeadlineTimesOut(subject: BackendSubject) async throws {
        try await subject.with(deadline: .seconds(1)) { harness in
            try harness.hold()
            await #expect(throws: InferenceError.timedOut) { try await harness.backend.generate(BackendSubject.request) }
            try harness.release()
        }
    }

    /// As an entry of a route: a request that reached the backend is its answer to give, failure
    /// included; the next entry never sees it.
    @Test(arguments: BackendSubject.allCases)
    func aRouteDoesNotPassOnARequestTheEntryWasSent(subject: BackendSubject) async throws {
        try await subject.with { harness in
            let next = StubBackend()
            let routed = RoutedBackend(
                routes: [
                    BackendSubject.request.model: [
                        RouteEntry(name: "first", backend: harness.backend),
                        RouteEntry(name: "next", backend: next),
                    ]
                ],
                fallback: next, spillOverQueue: nil, logger: Logger(label: "test"))
            let served = try await routed.generate(BackendSubject.request)
            #expect(served.upstream?.name == "first")
            try harness.breakIt()
            await #expect(throws: InferenceError.self) { try await routed.generate(BackendSubject.request) }
            #expect(next.sent == 0)
        }
    }

    /// After an upstream that cannot be reached (nothing was sent), the route's next entry serves.
    @Test(arguments: BackendSubject.allCases)
    func aRoutePassesToTheEntryAfterAnUnreachableUpstream(subject: BackendSubject) async throws {
        try await subject.with { harness in
            let gone = try RefusingLoopbackPort()
            let unreachable = UpstreamBackend(Upstream(name: "gone", dialect: .segmind, baseURL: gone.baseURL, key: UpstreamKey("k")))
            let routed = RoutedBackend(
                routes: [
                    BackendSubject.request.model: [
                        RouteEntry(name: "gone", backend: unreachable),
                        RouteEntry(name: "second", backend: harness.backend),
                    ]
                ],
                fallback: StubBackend(), spillOverQueue: nil, logger: Logger(label: "test"))
            let result: GenerationResult
            do {
                result = try await routed.generate(BackendSubject.request)
            } catch {
                await unreachable.shutdown()
                throw error
            }
            withExtendedLifetime(gone) {}
            await unreachable.shutdown()
            #expect(result.upstream?.name == "second" && result.images.count == BackendSubject.request.samples)
        }
    }
}
