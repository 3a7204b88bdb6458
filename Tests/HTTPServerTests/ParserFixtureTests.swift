import Foundation
import Testing

@testable import HTTPServer

/// Raw requests in `Fixtures/requests/*.http`, with what each must parse to in
/// `Fixtures/expectations.json`: every feature of the parser and every framing attack it refuses.
@Suite("Parser fixtures")
struct ParserFixtureTests {
    struct Expectation: Decodable {
        var requests: [ParsedRequest]
        var error: String?
        var status: Int?
        var note: String
    }

    static let expectations: [String: Expectation] = {
        let url = Bundle.module.url(forResource: "Fixtures/expectations", withExtension: "json")!
        return try! JSONDecoder().decode([String: Expectation].self, from: Data(contentsOf: url))
    }()

    static var names: [String] { expectations.keys.sorted() }

    static func raw(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/requests/\(name)", withExtension: "http"))
        return Array(try Data(contentsOf: url))
    }

    static func check(_ outcome: ParseOutcome, against expected: Expectation, _ context: String) {
        #expect(outcome.requests == expected.requests, "\(context)")
        #expect(outcome.error?.description == expected.error, "\(context)")
        #expect(outcome.error?.status.code == expected.status, "\(context)")
    }

    @Test("parses in one piece", arguments: names)
    func wholeInput(name: String) throws {
        let expected = try #require(Self.expectations[name])
        Self.check(ParserDriver.parse([try Self.raw(name)]), against: expected, name)
    }

    @Test("split anywhere in two, same result", arguments: names)
    func splitInTwo(name: String) throws {
        let expected = try #require(Self.expectations[name])
        let bytes = try Self.raw(name)
        for (index, pieces) in ParserDriver.splitsInTwo(bytes).enumerated() {
            Self.check(ParserDriver.parse(pieces), against: expected, "\(name) split at \(index + 1)")
        }
    }

    @Test("one byte at a time, same result", arguments: names)
    func byteByByte(name: String) throws {
        let expected = try #require(Self.expectations[name])
        Self.check(ParserDriver.parse(ParserDriver.oneByteAtATime(try Self.raw(name))), against: expected, name)
    }

    @Test("every fixture file has an expectation and the reverse")
    func fixturesMatchExpectations() throws {
        let folder = try #require(Bundle.module.url(forResource: "Fixtures/requests", withExtension: nil))
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".http") }.map { String($0.dropLast(5)) }.sorted()
        #expect(files == Self.names)
    }
}
