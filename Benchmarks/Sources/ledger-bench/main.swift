// Reserve + post pairs per second against the ledger, from many concurrent callers, as generation
// requests use it: on SQLite, and on PostgreSQL when LEDGER_POSTGRES_URL names a database.
// Prints a Markdown table.
import Foundation
import GatewayAPI
import GenerationCore
import Ledger
import Logging

let callers = Int(ProcessInfo.processInfo.environment["LEDGER_CALLERS"] ?? "64") ?? 64
let seconds = Double(ProcessInfo.processInfo.environment["LEDGER_SECONDS"] ?? "5") ?? 5
let path = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-bench-\(UUID().uuidString).sqlite").path
defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }

let price = Credits(decimal: "0.008")!

/// One key per caller, as on a team gateway; the first is also the key every caller shares.
func fundKeys(_ ledger: any Ledger) async throws -> [String] {
    var keys: [String] = []
    for index in 0..<callers {
        let (key, _) = try await ledger.createKey(NewKey(name: "caller \(index)"))
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "1000000")!, reason: "benchmark")
        keys.append(key.id)
    }
    return keys
}

/// One key per caller, all members of one team: every reservation holds the price from the key's
/// own credits and from the team's budget in one step, so every caller contends for the team's account.
func fundTeam(_ ledger: any Ledger) async throws -> [String] {
    let team = try await ledger.createTeam(name: "benchmark team")
    _ = try await ledger.adjust(.team(team.id), by: Credits(decimal: "1000000")!, reason: "benchmark")
    var keys: [String] = []
    for index in 0..<callers {
        let (key, _) = try await ledger.createKey(NewKey(name: "member \(index)", teamID: team.id))
        _ = try await ledger.adjust(.key(key.id), by: Credits(decimal: "1000000")!, reason: "benchmark")
        keys.append(key.id)
    }
    return keys
}

/// A rate no caller reaches, so that the limited row measures what the check costs, not refusals.
let unreachedRate = KeyLimits.requestsPerMinute.upperBound

/// Runs reserve + post pairs from `callers` tasks for `seconds`; returns pairs per second. With a
/// `limiter`, each pair first takes a request from its key's rate limit, as a limited key's request does.
func measure(_ ledger: any Ledger, limiter: (any RateLimiting)? = nil, keyFor: @escaping @Sendable (Int) -> String) async throws -> Double {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let pairs = try await withThrowingTaskGroup(of: Int.self) { group in
        for caller in 0..<callers {
            group.addTask {
                var count = 0
                while ContinuousClock.now < deadline {
                    if let limiter, case .limited = await limiter.check(key: keyFor(caller), perMinute: unreachedRate) {
                        fatalError("the benchmark's rate limit refused a request")
                    }
                    guard case .held(let hold, _) = try await ledger.reserve(keyID: keyFor(caller), amount: price, expiresAt: .max) else {
                        fatalError("the benchmark ran out of credits")
                    }
                    _ = try await ledger.post(hold, charge: price)
                    count += 1
                }
                return count
            }
        }
        return try await group.reduce(0, +)
    }
    return Double(pairs) / seconds
}

/// `measure` on `keys` while as many more callers ask holds of one key that has no credits: what
/// refusals, a member hammering an empty key, cost everyone else.
func measureBesideRefusals(_ ledger: any Ledger, keys: [String]) async throws -> (pairs: Double, refusals: Double) {
    let (empty, _) = try await ledger.createKey(NewKey(name: "empty"))
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    async let pairs = measure(ledger) { keys[$0] }
    let refusals = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<callers {
            group.addTask {
                var count = 0
                while ContinuousClock.now < deadline {
                    guard case .insufficient = try await ledger.reserve(keyID: empty.id, amount: price, expiresAt: .max) else {
                        fatalError("a key without credits was given a hold")
                    }
                    count += 1
                }
                return count
            }
        }
        return try await group.reduce(0, +)
    }
    return (try await pairs, Double(refusals) / seconds)
}

// Each store with the rate limiter a gateway on it uses for a limited key: the process's own
// bucket beside SQLite, the shared row in the database beside PostgreSQL.
var stores: [(String, any Ledger, any RateLimiting)] = [("SQLite (WAL)", try SQLiteLedger(path: path), RateLimiter())]
if let url = ProcessInfo.processInfo.environment["LEDGER_POSTGRES_URL"] {
    let ledger = try await PostgresLedger(url: url)
    stores.append(("PostgreSQL", ledger, DatabaseRateLimits(store: ledger, fallback: RateLimiter(), logger: Logger(label: "ledger-bench"))))
}
print("| store | callers | keys | reserve+post pairs/s |")
print("|---|---:|---:|---:|")
for (name, ledger, limiter) in stores {
    let keys = try await fundKeys(ledger)
    let perKey = try await measure(ledger) { keys[$0] }
    let limited = try await measure(ledger, limiter: limiter) { keys[$0] }
    let shared = try await measure(ledger) { _ in keys[0] }
    let members = try await fundTeam(ledger)
    let team = try await measure(ledger) { members[$0] }
    let besideRefusals = try await measureBesideRefusals(ledger, keys: keys)
    print(String(format: "| %@ | %d | one each | %.0f |", name, callers, perKey))
    print(String(format: "| %@ | %d | one each, each rate-limited | %.0f |", name, callers, limited))
    print(String(format: "| %@ | %d | one shared | %.0f |", name, callers, shared))
    print(String(format: "| %@ | %d | one each, one team budget | %.0f |", name, callers, team))
    print(
        String(
            format: "| %@ | %d | one each, while %d more are refused on an empty key (%.0f refusals/s) | %.0f |", name, callers, callers,
            besideRefusals.refusals, besideRefusals.pairs))
    let problems = try await ledger.verify()
    if !problems.isEmpty { print("ledger verify found: \(problems)") }
}
