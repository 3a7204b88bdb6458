import Foundation
import Testing

@testable import GenerationCore

/// Spliced output must be byte for byte what `JSONEncoder` writes for the texts themselves (keys
/// sorted: unsorted, `JSONEncoder` writes them in no fixed order), and the same JSON unsorted.
@Suite("Spliced JSON")
struct SplicedJSONTests {
    struct Answer: Encodable {
        let image: String
        let images: [String]
        let status: String
        let nested: [String: String]
    }

    static func encoded(_ value: some Encodable, sortedKeys: Bool = false) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = sortedKeys ? [.sortedKeys, .withoutEscapingSlashes] : [.withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func object(_ json: [UInt8]) throws -> NSDictionary? {
        try JSONSerialization.jsonObject(with: Data(json)) as? NSDictionary
    }

    static let texts = [
        String(repeating: "QUJD+/==", count: 40_000), "", "a", "ab/cd", "with \"quotes\" and \\ a backslash", "line\nbreak", "naïve", "\u{1}",
        "12345",
    ]

    @Test("every text, spliced or not, comes out as JSONEncoder writes it", arguments: texts)
    func sameAsEncoder(text: String) throws {
        for sortedKeys in [false, true] {
            var splices = SplicedJSON()
            let value = Answer(
                image: splices.placeholder(for: ArraySlice(text.utf8)),
                images: [splices.placeholder(for: ArraySlice(text.utf8)), "plain", splices.placeholder(for: ArraySlice("x".utf8))],
                status: "Success", nested: ["inner": splices.placeholder(for: ArraySlice(text.utf8))])
            let expected = Answer(image: text, images: [text, "plain", "x"], status: "Success", nested: ["inner": text])
            let spliced = splices.encode(value, sortedKeys: sortedKeys), plain = try Self.encoded(expected, sortedKeys: sortedKeys)
            if sortedKeys {
                #expect(spliced == plain)
            } else {
                #expect(try Self.object(spliced) == Self.object(plain))
            }
        }
    }

    /// What makes it fast: `JSONEncoder` sees a short stand-in, never the megabyte. Text that JSON
    /// escapes stands as itself.
    @Test("only text that JSON writes as it is stands in the value as a short placeholder")
    func placeholders() {
        var splices = SplicedJSON()
        let long = String(repeating: "QUJD+/==", count: 40_000)
        let stand = splices.placeholder(for: ArraySlice(long.utf8))
        #expect(stand != long && stand.utf8.count < 64, "\(stand.utf8.count) bytes")
        for text in ["with \"quotes\"", "a \\ backslash", "line\nbreak", "naïve", "\u{1}"] {
            #expect(splices.placeholder(for: ArraySlice(text.utf8)) == text)
        }
    }

    @Test("an image's base64 is the standard, padded base64 of its bytes")
    func base64() throws {
        for count in [0, 1, 2, 3, 1000, 100_001] {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
            var splices = SplicedJSON()
            let value = ["image": splices.base64(of: GeneratedImage(bytes: bytes, format: .png))]
            let expected = ["image": Data(bytes).base64EncodedString()]
            #expect(splices.encode(value, sortedKeys: true) == (try Self.encoded(expected, sortedKeys: true)))
        }
    }

    @Test("a string that looks like a placeholder of another value is left as it is")
    func othersPlaceholders() throws {
        var first = SplicedJSON()
        let foreign = first.placeholder(for: ArraySlice("QUJD".utf8))
        var second = SplicedJSON()
        let value = ["a": foreign, "b": second.placeholder(for: ArraySlice("RUZH".utf8)), "c": "sdgate-spliced-0"]
        let expected = ["a": foreign, "b": "RUZH", "c": "sdgate-spliced-0"]
        #expect(second.encode(value, sortedKeys: true) == (try Self.encoded(expected, sortedKeys: true)))
    }

    @Test("nothing spliced: JSONEncoder's output as it is")
    func nothingSpliced() throws {
        #expect(SplicedJSON().encode(["status": "ok"]) == Array(#"{"status":"ok"}"#.utf8))
    }
}
