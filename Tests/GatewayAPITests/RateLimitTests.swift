import Foundation
import GenerationCore
import HTTPServer
import Synchronization
import TestSupport
import Testing

@testable import GatewayAPI

@Suite("Rate limits")
struct RateLimitTests {
    @Test func aBucketAllowsItsBurstThenRefillsOverTheMinute() {
        var bucket = TokenBucket(perMinute: 3, now: 0)
        #expect(bucket.take(at: 0) == .allowed(remaining: 2))
        #expect(bucket.take(at: 0) == .allowed(remaining: 1))
        #expect(bucket.take(at: 0) == .allowed(remaining: 0))
        #expect(bucket.take(at: 0) == .limited(retryAfter: 20))
        #expect(bucket.take(at: 15) == .limited(retryAfter: 5))
        #expect(bucket.take(at: 20) == .allowed(remaining: 0))
        // A quiet hour refills to the burst, no further.
        #expect(bucket.take(at: 3600) == .allowed(remaining: 2))
    }

    /// A rate of zero (stored before it was refused at the edge) divided by zero and trapped when
    /// its infinite wait became Retry-After; it counts as one a minute.
    @Test func aRateOfZeroIsOneAMinute() {
        var bucket = TokenBucket(perMinute: 0, now: 0)
        #expect(bucket.take(at: 0) == .allowed(remaining: 0))
        #expect(bucket.take(at: 30) == .limited(retryAfter: 30))
        let limiter = RateLimiter(now: { 0 })
        #expect(limiter.check(key: "k", perMinute: 0) == .allowed(remaining: 0))
        #expect(limiter.check(key: "k", perMinute: -3) == .limited(retryAfter: 60))
    }

    final class ManualSeconds: Sendable {
        let value = Mutex<Double>(1_800_000_000)
        func advance(_ seconds: Double) { value.withLock { $0 += seconds } }
    }

    /// A key limited to 2 per minute, through the dialect: the third request is refused with the
    /// headers Segmind's clients read, and allowed again half a minute later.
    @Test func theDialectAnswers429WithRetryAfterAndResetTime() async throws {
        struct LimitedGate: AccessGate {
            let inner = TestGate()
            func authenticate(apiKey: String) async -> AuthenticatedKey? {
                await inner.authenticate(apiKey: apiKey).map { AuthenticatedKey(id: $0.id, rateLimitPerMinute: 2) }
            }
            func remaining(for key: AuthenticatedKey) async -> Credits? { await inner.remaining(for: key) }
            func reserve(_ amount: Credits, for key: AuthenticatedKey, queuedUpTo queueTime: Duration) async -> CreditReservation {
                await inner.reserve(amount, for: key, queuedUpTo: queueTime)
            }
            func settle(_ hold: CreditHold, charge: Credits) async -> Credits? { await inner.settle(hold, charge: charge) }
            func release(_ hold: CreditHold, reason: String) async -> Credits? { await inner.release(hold, reason: reason) }
            func recordUsage(_ usage: GenerationUsage) async {}
            func mayStillSpend(keyID: String) async -> Bool { true }
            func claimIdempotency(_ idempotencyKey: String, fingerprint: [UInt8], for key: AuthenticatedKey) async -> IdempotencyOutcome {
                .proceed(IdempotencyTicket(key: idempotencyKey, claim: "test"))
            }
            func completeIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, answer: StoredAnswer) async {}
            func releaseIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey) async {}
        }
        let clock = ManualSeconds()
        let backend = FakeBackend()
        let dialect = SegmindDialect(
            admission: Admission(
                catalog: ShippedCatalog.catalog, gate: LimitedGate(), images: ImageLoader(fetcher: nil),
                rateLimiter: RateLimiter(now: { clock.value.withLock { $0 } })),
            backend: backend)
        let request = HTTPRequest(
            head: HTTPRequestHead(
                method: .post, target: "/v1/sdxl1.0-txt2img",
                headers: ["Host": "t", "x-api-key": TestGate.key]),
            body: Array(#"{"prompt":"x"}"#.utf8))
        #expect(await dialect.handle(request, slug: "sdxl1.0-txt2img").status == .ok)
        #expect(await dialect.handle(request, slug: "sdxl1.0-txt2img").status == .ok)
        let limited = await dialect.handle(request, slug: "sdxl1.0-txt2img")
        #expect(limited.status == .tooManyRequests)
        #expect(limited.headers["Retry-After"] == "30")
        #expect(limited.headers["x-rate-limit-reset-at-utc"] == "2027-01-15T08:00:30Z")
        #expect(limited.headers["x-remaining-credits"] == "1000")
        guard case .bytes(let body) = limited.body else { return }
        #expect(String(decoding: body, as: UTF8.self) == #"{"error":"Rate limit exceeded"}"#)
        #expect(backend.requests.count == 2, "a refused request does no work")
        clock.advance(30)
        #expect(await dialect.handle(request, slug: "sdxl1.0-txt2img").status == .ok)
    }
}
