// The Segmind dialect's own cost, without HTTP and without generation: a 1 MB base64 sdxl-img2img
// request through JSON parsing, validation, the base64 check (its head decoded) and image
// inspection, answered by a backend that returns at once. Prints requests/s on one and on all
// cores, and peak RSS.
import Foundation
import GatewayAPI
import GenerationCore
import HTTPServer

struct InstantBackend: InferenceBackend {
    func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult {
        GenerationResult(images: [GeneratedImage(bytes: [0xFF, 0xD8, 0xFF, 0xD9], format: .jpeg)], seed: request.seed, generationTime: .zero)
    }
}

/// Every key is known and credits never run out: the benchmark measures the dialect, not the ledger.
struct OneKey: AccessGate {
    func authenticate(apiKey: String) async -> AuthenticatedKey? { AuthenticatedKey(id: "bench") }
    func remaining(for key: AuthenticatedKey) async -> Credits? { nil }
    func reserve(_ amount: Credits, for key: AuthenticatedKey, queuedUpTo queueTime: Duration) async -> CreditReservation {
        .held(CreditHold(id: "bench"), remaining: .zero)
    }
    func settle(_ hold: CreditHold, charge: Credits) async -> Credits? { nil }
    func release(_ hold: CreditHold, reason: String) async -> Credits? { nil }
    func recordUsage(_ usage: GenerationUsage) async {}
    func mayStillSpend(keyID: String) async -> Bool { true }
    func claimIdempotency(_ idempotencyKey: String, fingerprint: [UInt8], for key: AuthenticatedKey) async -> IdempotencyOutcome {
        .proceed(IdempotencyTicket(key: idempotencyKey, claim: "bench"))
    }
    func completeIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, answer: StoredAnswer) async {}
    func releaseIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey) async {}
}

/// A PNG header for 1024x768 followed by ~768 KiB of data: 1 MiB once base64-encoded.
func inputImage() -> String {
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        var length = UInt32(data.count).bigEndian
        return withUnsafeBytes(of: &length) { Array($0) } + Array(type.utf8) + data + [0, 0, 0, 0]
    }
    var size: [UInt8] = []
    for value in [UInt32(1024), UInt32(768)] { var big = value.bigEndian; size += withUnsafeBytes(of: &big) { Array($0) } }
    let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", size + [8, 2, 0, 0, 0])
        + chunk("IDAT", (0..<(768 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) })
    return Data(png).base64EncodedString()
}

func peakRSSMegabytes() -> Double {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
    return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}

let catalogPath = CommandLine.arguments.dropFirst().first ?? "../Config/models.yaml"
let catalog = try ModelCatalog.load(file: catalogPath)
let dialect = SegmindDialect(admission: Admission(catalog: catalog, gate: OneKey(), images: ImageLoader(fetcher: nil)), backend: InstantBackend())
let body = Array(try JSONSerialization.data(withJSONObject: [
    "prompt": "a lighthouse at dusk", "image": inputImage(), "samples": "1", "num_inference_steps": 30,
    "guidance_scale": "6.5", "strength": 0.65, "scheduler": "UniPC", "base_model": "juggernaut", "base64": true,
], options: .withoutEscapingSlashes))  // as Python's json and JavaScript's JSON.stringify send it
let request = HTTPRequest(head: HTTPRequestHead(method: .post, target: "/v1/sdxl-img2img",
                                                headers: ["Host": "bench", "x-api-key": "k", "Content-Type": "application/json"]),
                          body: body)

guard await dialect.handle(request, slug: "sdxl-img2img").status == .ok else { fatalError("the benchmark request is not accepted") }

/// Runs the request on `workers` tasks for `seconds`; returns requests per second.
func measure(workers: Int, seconds: Double) async -> Double {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let counts = await withTaskGroup(of: Int.self) { group in
        for _ in 0..<workers {
            group.addTask {
                var count = 0
                while ContinuousClock.now < deadline {
                    _ = await dialect.handle(request, slug: "sdxl-img2img")
                    count += 1
                }
                return count
            }
        }
        return await group.reduce(0, +)
    }
    return Double(counts) / seconds
}

let seconds = Double(ProcessInfo.processInfo.environment["VALIDATION_SECONDS"] ?? "5") ?? 5
let cores = ProcessInfo.processInfo.activeProcessorCount
let single = await measure(workers: 1, seconds: seconds)
let parallel = await measure(workers: cores, seconds: seconds)
let megabytes = Double(body.count) / 1_048_576
print("| case | requests/s | MB/s | peak RSS MB |")
print("|---|---:|---:|---:|")
print(String(format: "| 1 worker, %.2f MB sdxl-img2img body | %.0f | %.0f | |", megabytes, single, single * megabytes))
print(String(format: "| %d workers | %.0f | %.0f | %.1f |", cores, parallel, parallel * megabytes, peakRSSMegabytes()))
