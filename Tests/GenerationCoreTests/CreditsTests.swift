import Testing

@testable import GenerationCore

@Suite("Credits")
struct CreditsTests {
    @Test(arguments: [
        ("0.004", 4_000), ("12", 12_000_000), ("-1.5", -1_500_000), ("12.", 12_000_000), ("0.000001", 1),
        ("1000000000000", 1_000_000_000_000_000_000), ("-1000000000000", -1_000_000_000_000_000_000),
    ])
    func decimalAmountsAreExact(text: String, micro: Int64) {
        #expect(Credits(decimal: text)?.microCredits == micro)
    }

    /// "9223372036854.999999" passed the multiplication's overflow check and trapped in the
    /// addition of its decimals; every amount past the maximum is refused before any arithmetic.
    @Test(arguments: [
        "9223372036854.999999", "9223372036854.775808", "1000000000000.000001", "-1000000000000.000001",
        "99999999999999999999", "1e6", "0x19", "+5", "--5", "-+5", "1.2.3", ".5", "", "-", "0.0000001", "١٢",
        // Found by the admin fuzz target: Int64 read "-0" after the minus, so a second minus was
        // taken and "--0.5" read as -0.5.
        "--0", "--0.5",
    ])
    func anythingElseIsRefused(text: String) {
        #expect(Credits(decimal: text) == nil)
    }

    @Test func theMaximumLeavesRoomForTheSumOfTwo() {
        let (_, overflow) = Credits.maximum.microCredits.addingReportingOverflow(Credits.maximum.microCredits)
        #expect(!overflow)
    }
}

/// Times that upstreams and workers report in seconds, as JSON numbers or headers: a huge or
/// non-finite one once trapped in its conversion to milliseconds.
@Suite("Reported durations")
struct ReportedDurationTests {
    @Test(arguments: [1e300, -1, .infinity, -.infinity, .nan, 86_401])
    func implausibleTimesAreDropped(seconds: Double) {
        #expect(Duration.reported(seconds: seconds) == nil)
    }

    @Test func plausibleTimesAreKeptToTheMillisecond() {
        #expect(Duration.reported(seconds: 0.92) == .milliseconds(920))
        #expect(Duration.reported(seconds: 86_400) == .seconds(86_400))
    }
}
