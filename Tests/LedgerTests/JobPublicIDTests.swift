import Testing

@testable import Ledger

/// Public ids are read from decimal text only when it is 1 to 16 ASCII digits within range.
@Suite("Job public ids")
struct JobPublicIDTests {
    @Test func decimalTextInRangeIsAPublicID() {
        #expect(JobPublicID.parse("302455") == 302455)
        #expect(JobPublicID.parse("1") == 1)
        #expect(JobPublicID.parse("9007199254740991") == 9_007_199_254_740_991)
        #expect(JobPublicID.parse("0000000000000042") == 42)
    }

    @Test(arguments: [
        "", "0", "-1", "+1", "12a", " 1", "1 ", "9007199254740992", "9999999999999999", "00000000000000001", "99999999999999999999",
        "\u{0661}", "\u{FF11}", "1_000", "0x1F", "1e3",
    ])
    func anythingElseIsNot(text: String) {
        #expect(JobPublicID.parse(text) == nil)
    }

    @Test func drawsAreInRange() {
        #expect((0..<1000).allSatisfy { _ in JobPublicID.range.contains(JobPublicID.random()) })
    }
}
