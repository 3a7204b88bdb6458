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

    /// An answer of some three million one-letter strings (12 MB): a ModelsLab answer (HTTP 200,
    /// as v3 answers everything), or a Segmind error body. It is refused as the member's 502 without
    /// its values being built (each once cost some 15 times the answer's size), nothing is charged,
    /// and the gateway serves on. The bound: peak resident memory under its baseline + 64 MiB.
    @Test(arguments: ["segmind", "modelslab"])
    func answersOfMillionsOfSmallValuesAreRefusedWithoutBeingBuilt(dialect: String) async throws {
        let upstream: FakeUpstream = dialect == "segmind" ? try FakeSegmindUpstream() : try FakeModelsLabUpstream(pollsBeforeSuccess: 0)
        let gateway = try await Self.start(upstream, dialect: dialect)
        let member = try await gateway.createKey(name: "heidi", credits: "1")
        // One request served first: the baseline is that of a gateway that has served.
        #expect(try await gateway.sdk(member.secret, Self.model, ["prompt": "a fox"])["status"] as? Int == 200)
        let paid = try await gateway.credits(of: member.id)
        let pid = gateway.gateway.process.processIdentifier
        let baseline = try ServerAbuseTests.residentBytes(of: pid)

        upstream.misbehave(.manySmallValues(status: dialect == "segmind" ? 400 : 200))
        let expected = dialect == "segmind" ? "the upstream refused the request (HTTP 400)" : "the upstream's answer could not be read"
        for _ in 0..<2 {
            let answer = try await gateway.sdk(member.secret, Self.model, ["prompt": "a fox"])
            #expect(answer["status"] as? Int == 502 && answer["error"] as? String == expected, "\(answer)")
        }
        let peak = try ServerAbuseTests.peakResidentBytes(of: pid)
        #expect(peak < baseline + (64 << 20), "peak resident \(peak >> 20) MiB, from \(baseline >> 20) MiB")
        #expect(try await gateway.credits(of: member.id) == paid)

        upstream.misbehave(nil)
        #expect(try await gateway.sdk(member.secret, Self.model, ["prompt": "a fox"])["status"] as? Int == 200)
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
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
