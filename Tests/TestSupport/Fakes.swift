package import GenerationCore
import Synchronization

/// Knows one key, `SG_test_key`, with a fixed 1000 credits that nothing ever uses up.
package struct TestGate: AccessGate {
    package static let key = "SG_test_key"
    package static let remaining = Credits(microCredits: 1_000_000_000)

    package init() {}

    package func authenticate(apiKey: String) async -> AuthenticatedKey? {
        apiKey == Self.key ? AuthenticatedKey(id: "key-1") : nil
    }

    package func remaining(for key: AuthenticatedKey) async -> Credits? { Self.remaining }
    package func reserve(_ amount: Credits, for key: AuthenticatedKey, queuedUpTo queueTime: Duration) async -> CreditReservation {
        .held(CreditHold(id: "hold"), remaining: Self.remaining)
    }
    package func settle(_ hold: CreditHold, charge: Credits) async -> Credits? { Self.remaining }
    package func release(_ hold: CreditHold, reason: String) async -> Credits? { Self.remaining }
    package func recordUsage(_ usage: GenerationUsage) async {}
    package func mayStillSpend(keyID: String) async -> Bool { true }
    package func claimIdempotency(_ idempotencyKey: String, fingerprint: [UInt8], for key: AuthenticatedKey) async -> IdempotencyOutcome {
        .proceed(IdempotencyTicket(key: idempotencyKey, claim: "test"))
    }
    package func completeIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, answer: StoredAnswer) async {}
    package func releaseIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey) async {}
}

/// A backend that lives in the tests: answers every request with `samples` copies of a small JPEG,
/// or with the error it was told to give, and remembers what it was asked.
package final class FakeBackend: InferenceBackend, Sendable {
    package static let outputJPEG = TestImages.jpeg(width: 8, height: 8)

    private let state = Mutex<(failure: InferenceError?, requests: [GenerationRequest])>((nil, []))
    /// While paused, requests wait here until `resume`.
    private let paused = Mutex<[CheckedContinuation<Void, Never>]?>(nil)

    package init() {}

    package func fail(with error: InferenceError?) { state.withLock { $0.failure = error } }

    package var requests: [GenerationRequest] { state.withLock { $0.requests } }

    /// Holds every request from now on until `resume`: a generation that takes as long as a test needs.
    package func pause() { paused.withLock { $0 = $0 ?? [] } }

    package func resume() {
        for waiter in paused.withLock({ paused in
            defer { paused = nil }; return paused ?? []
        }) { waiter.resume() }
    }

    package func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        let failure = state.withLock { state in
            state.requests.append(request)
            return state.failure
        }
        await withCheckedContinuation { continuation in
            let waits = paused.withLock { paused in
                guard paused != nil else { return false }
                paused!.append(continuation)
                return true
            }
            if !waits { continuation.resume() }
        }
        if let failure { throw failure }
        return GenerationResult(
            images: Array(repeating: GeneratedImage(bytes: Self.outputJPEG, format: .jpeg), count: request.samples),
            seed: request.seed,
            generationTime: .milliseconds(1234)
        )
    }
}

/// Images made in code: real headers, as the inspector reads them, with little behind them.
package enum TestImages {
    /// A PNG signature, an IHDR chunk for `width`×`height` and IEND.
    package static func png(width: Int, height: Int) -> [UInt8] {
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var ihdr: [UInt8] = []
        ihdr += bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 2, 0, 0, 0]
        bytes += chunk("IHDR", ihdr) + chunk("IEND", [])
        return bytes
    }

    /// SOI, a baseline SOF0 frame header for `width`×`height`, EOI.
    package static func jpeg(width: Int, height: Int) -> [UInt8] {
        [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08] + bigEndian16(height) + bigEndian16(width)
            + [0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xD9]
    }

    private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + typed + bigEndian(crc32(typed))
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    private static func bigEndian16(_ value: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)] }

    private static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
