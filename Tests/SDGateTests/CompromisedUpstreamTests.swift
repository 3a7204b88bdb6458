import Foundation
import TestSupport
import Testing

/// What an upstream that means harm (or a broken one) can put in its answers, against the real
/// `sdgate serve`: nothing it sends makes the gateway build unbounded values, or keep unbounded text.
@Suite("A compromised upstream", .serialized)
struct CompromisedUpstreamTests {
    static let model = "sdxl1.0-txt2img"

    static func start(_ upstream: FakeUpstream, dialect: String) async throws -> ProxiedGateway {
        try await ProxiedGateway.start(
            upstreams: [.init(name: "team", dialect: dialect, baseURL: upstream.baseURL, key: upstream.key)], routes: [model: ["team"]])
    }

    /// The upstream's `x-cost` and `x-remaining-credits` are kept in the usage row only when they
    /// are plain decimal numbers of at most 32 characters: 40,000 digits, or words, are not kept
    /// (each row is kept for good, and the usage report carried every such header in full).
    @Test func upstreamAmountsThatAreNotPlainNumbersAreNotKept() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await Self.start(upstream, dialect: "segmind")
        let member = try await gateway.createKey(name: "ivan", credits: "1")
        let long = String(repeating: "9", count: 40_000)
        let headers: [(cost: String, remaining: String)] = [(long, "12.5"), ("0.004 USD", "-3.25"), ("0.0042", long), ("1.2.3", "--1")]
        for (cost, remaining) in headers {
            upstream.cost = cost
            upstream.remainingCredits = remaining
            let answer = try await gateway.sdk(member.secret, Self.model, ["prompt": "a fox"])
            #expect(answer["status"] as? Int == 200, "\(answer)")
        }
        let usage = try await gateway.usage()
        #expect(usage.map { $0["upstream_cost"] as? String } == [nil, nil, "0.0042", nil])
        #expect(usage.map { $0["upstream_remaining_credits"] as? String } == ["12.5", "-3.25", nil, nil])
        let report = try await gateway.command(["usage"])
        #expect(!report.output.contains("99999999"), "\(report.output.prefix(500))")
        #expect(report.output.contains("(team charged 0.0042)"), "\(report.output)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }
}
