import Foundation
import TestSupport
import Testing

/// Refused requests sent as fast as one client can through the real `sdgate serve`: a key without
/// credits, and a key whose bodies are malformed. Each refusal was a row of the SQLite ledger, so a
/// member could grow it without bound; now they leave a row per key, status and minute, and the
/// usage report (`/admin/usage`, `sdgate usage`) still counts every one.
@Suite("Refusal flood", .serialized)
struct RefusalFloodTests {
    @Test func refusalsLeaveARowPerMinuteAndTheReportCountsEachOne() async throws {
        let environment = try KeysCommandTests.environment()
        let admin = try await AdminAbuseTests.start(environment)
        let flood = try await admin.call("POST", "/admin/keys", #"{"name": "flood"}"#).body
        let funded = try await admin.call("POST", "/admin/keys", #"{"name": "funded", "credits": "5"}"#).body
        let floodID = try #require(flood["id"] as? String), fundedID = try #require(funded["id"] as? String)

        /// The statuses of `times` requests with `body`, sent one after another on one connection.
        func send(_ key: [String: Any], _ body: String, times: Int) async throws -> [Int] {
            let secret = try #require(key["secret"] as? String), url = "\(admin.base)/v1/sdxl1.0-txt2img"
            let headers = ["-s", "-w", "%{http_code}\n", "-H", "x-api-key: \(secret)", "-H", "Content-Type: application/json", "-d", body]
            let sent = try await Command.run("curl", headers + (0..<times).flatMap { _ in ["-o", "/dev/null", url] })
            #expect(sent.status == 0, "\(sent.errors)")
            return sent.output.split(separator: "\n").compactMap { Int($0) }
        }
        let minute: Int64 = 60_000
        let firstMinute = Int64(Date().timeIntervalSince1970 * 1000) / minute
        let broke = try await send(flood, #"{"prompt": "a lighthouse"}"#, times: 600)
        let malformed = try await send(funded, #"{"prompt": "a lighthouse", "num_inference_steps": "0x19"}"#, times: 200)
        // Held, then released when no backend answered: its own row.
        let held = try await send(funded, #"{"prompt": "a lighthouse"}"#, times: 1)
        let lastMinute = Int64(Date().timeIntervalSince1970 * 1000) / minute
        #expect(broke.count == 600 && Set(broke) == [406], "Segmind's no credits: \(Set(broke))")
        #expect(malformed.count == 200 && Set(malformed).count == 1 && malformed.allSatisfy { $0 >= 400 }, "\(Set(malformed))")
        #expect(held == [503])

        // Two groups of refusals, a row each in every minute the flood reached, and the held request.
        let database = try #require(environment["SDGATE_DATA_DIR"]) + "/sdgate.sqlite"
        let counted = try await Command.run("sqlite3", [database, "SELECT COUNT(*) FROM usage_event"])
        let rows = try #require(Int(counted.output.trimmingCharacters(in: .whitespacesAndNewlines)), "\(counted.errors)")
        #expect(rows >= 3 && rows <= 2 * Int(lastMinute - firstMinute + 1) + 1, "\(rows) rows for 801 requests")

        let report = try await admin.call("GET", "/admin/usage?since=1h")
        #expect(report.body["total_requests"] as? Int == 801, "\(report.body)")
        let byKey = (report.body["by_key"] as? [[String: Any]] ?? []).map { ($0["key_id"] as? String ?? "", $0["requests"] as? Int ?? 0) }
        #expect(byKey.sorted { $0.0 < $1.0 }.map(\.1) == (floodID < fundedID ? [600, 201] : [201, 600]), "\(byKey)")
        let listed = report.body["requests"] as? [[String: Any]] ?? []
        #expect(listed.count == rows, "every row listed")
        let floodRows = listed.filter { $0["key_id"] as? String == floodID }
        #expect(floodRows.allSatisfy { $0["counted"] as? Bool == true && $0["status"] as? Int == 406 }, "\(floodRows)")
        #expect(floodRows.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) } == 600, "\(floodRows)")

        // The command line's text shows each counted row's requests.
        let command = try await RunningGateway.run(["usage", "--key", floodID], environment: environment)
        #expect(command.status == 0, "\(command.errors)")
        let lines = command.output.split(separator: "\n").filter { $0.hasSuffix("in the minute") }
        let shown = lines.compactMap { line in line.split(separator: "  ").last?.split(separator: " ").first.flatMap { Int($0) } }
        #expect(lines.count == floodRows.count && shown.reduce(0, +) == 600, "\(command.output)")
        #expect(command.output.contains("600 requests, 0 credits"), "\(command.output)")
        #expect(try await admin.gateway.stop(signal: SIGTERM) == 0)
    }
}
