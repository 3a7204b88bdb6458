import Foundation
import Testing

@testable import GenerationCore

/// The fast reader must give exactly `JSONDecoder`'s answer — the same object, or a refusal — for
/// bodies with long strings in every position and every kind of flaw.
@Suite("JSON object reader")
struct JSONObjectReaderTests {
    static let long = String(repeating: "QUJD", count: JSONObjectReader.liftedLength / 2)

    static let bodies: [String] = [
        #"{"prompt":"a fox","image":"\#(long)","seed":42}"#,
        #"{"image":"\#(long)","mask":"\#(long)x","samples":2}"#,
        #"{"images":["\#(long)","short"],"nested":{"image":"\#(long)"}}"#,
        // Escapes: never lifted, still decoded alike.
        #"{"image":"\#(long)\"quoted\" and \\ and \u00e9","seed":1}"#,
        #"{"image":"\#(long)\\","seed":1}"#,
        #"{"prompt":"\"image\":\"\#(long)\"","seed":1}"#,
        // A long key, a long number-like string, unicode.
        #"{"\#(long)":"value"}"#,
        #"{"image":"\#(long)ünïcødé ✓"}"#,
        // Flaws JSONDecoder refuses.
        "{\"image\":\"\(long)\u{01}\"}",
        "{\"image\":\"\(long)\t\"}",
        #"{"image":"\#(long)"#,
        #"{"image":"\#(long)"}trailing"#,
        #"{"image":"\#(long)",}"#,
        #"{"image" "\#(long)"}"#,
        #"["\#(long)"]"#,
        #""\#(long)""#,
        #"{"image":"\#(long)\"#,
        #"{"image":"\#(long)\u12"}"#,
    ]

    @Test(arguments: bodies.indices)
    func decodesExactlyAsJSONDecoder(index: Int) {
        let body = Array(Self.bodies[index].utf8)
        let expected = try? JSONDecoder().decode([String: JSONValue].self, from: Data(body))
        #expect((try? JSONObjectReader.decode(body))?.mapValues(\.asDecoded) == expected, "body \(index)")
    }

    /// A long string of ASCII is the body's own bytes; a long one with other characters a `String`.
    @Test func longASCIIStaysBytesAndOtherLongTextBecomesAString() throws {
        let object = try JSONObjectReader.decode(Array(Self.bodies[0].utf8))
        #expect(object["image"] == .ascii(ASCIIText(Self.long)))
        #expect(object["prompt"] == .string("a fox"))
        let unicode = try JSONObjectReader.decode(Array(Self.bodies[7].utf8))
        #expect(unicode["image"] == .string(Self.long + "ünïcødé ✓"))
    }

    /// The fast path is taken where it can be: not every body falling back to the slow one.
    /// The reader tells how much of a lifted string it saw to be base64: all of an image's text
    /// up to its padding, and up to the first other character of any other text.
    @Test(arguments: [("", 0), ("==", 0), ("$abc", 0), ("ab-cd", 2)])
    func aLiftedStringCarriesTheRunOfBase64ItWasSeenToBe(suffix: String, offset: Int) throws {
        let body = Array(#"{"image":"\#(Self.long)\#(suffix)","seed":1}"#.utf8)
        guard case .ascii(let text) = try JSONObjectReader.decode(body)["image"] else {
            Issue.record("the image was not lifted")
            return
        }
        #expect(text.base64Run == Self.long.utf8.count + offset)
        #expect(text.count == Self.long.utf8.count + suffix.utf8.count)
    }

    @Test(arguments: [0, 1, 2, 7])
    func ordinaryBodiesAreReadWithTheirLongStringsLifted(index: Int) throws {
        #expect(try JSONObjectReader.decodeLifting(Array(Self.bodies[index].utf8)) != nil)
    }

    @Test func invalidUTF8InALongStringIsRefusedAsJSONDecoderRefusesIt() {
        var body = Array(#"{"image":""#.utf8) + Array(Self.long.utf8)
        body += [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect((try? JSONDecoder().decode([String: JSONValue].self, from: Data(body))) == nil)
        #expect((try? JSONObjectReader.decode(body)) == nil)
    }

    /// A worker's answer as a typed value: its `LiftedText` fields the body's own bytes, the rest
    /// as `JSONDecoder` reads it (a seed past 2^63 exactly).
    struct Answer: Decodable, Equatable {
        struct Image: Decodable, Equatable {
            let data: LiftedText
            let format: String?
        }

        let images: [Image]
        let seed: UInt64
        let note: String?
    }

    @Test func typedValuesGetTheirLongTextsAsTheBodysBytes() throws {
        let body = Array(
            #"{"images":[{"data":"\#(Self.long)","format":"png"},{"data":"\#(Self.long)"},{"data":"short"}],"seed":18446744073709551615}"#.utf8)
        let answer = try JSONObjectReader.decode(Answer.self, from: body)
        #expect(answer.images.map(\.data.value) == [.ascii(ASCIIText(Self.long)), .ascii(ASCIIText(Self.long)), .string("short")])
        #expect(answer.images.map(\.format) == ["png", nil, nil] && answer.seed == .max)
        #expect(answer.images[0].data.bytes.elementsEqual(Self.long.utf8))
    }

    /// A long string in a field that is not a `LiftedText` would come back as its placeholder: the
    /// whole body is decoded as it is instead, so the field holds its own text.
    @Test func aLongStringInAnyOtherFieldIsDecodedAsItIs() throws {
        let body = Array(#"{"images":[{"data":"\#(Self.long)"}],"seed":1,"note":"\#(Self.long)"}"#.utf8)
        let answer = try JSONObjectReader.decode(Answer.self, from: body)
        #expect(answer.note == Self.long && answer.images.map(\.data.value) == [.string(Self.long)])
        #expect((try? JSONObjectReader.decode(Answer.self, from: Array(#"{"images":[{"data":"\#(Self.long)"}]}"#.utf8))) == nil)
    }

    /// `{"a":[0,…]}` holds `count` + 2 values by the reader's count (`{`, `:`, `[` and a comma
    /// between each two numbers), beside a long string or not; up to the limit it is read, past it
    /// refused, whichever way it is decoded.
    @Test(arguments: [false, true])
    func aBodyOfMoreValuesThanTheLimitIsRefused(withLongString: Bool) throws {
        func body(_ count: Int) -> [UInt8] {
            let image = withLongString ? #"{"data":"\#(Self.long)"}"# : #"{"data":"short"}"#
            return Array(#"{"images":[\#(image)],"seed":1,"a":[\#(Array(repeating: "0", count: count).joined(separator: ","))]}"#.utf8)
        }
        // Beside the array: `{`, `:`, `[`, `{`, `:`, `,`, `:`, `,`, `:` and `[`.
        let atTheLimit = body(JSONObjectReader.maxValues - 10 + 1)
        #expect((try JSONObjectReader.decode(atTheLimit))["seed"] == .integer(1))
        #expect(try JSONObjectReader.decode(Answer.self, from: atTheLimit).seed == 1)
        let past = body(JSONObjectReader.maxValues - 10 + 2)
        #expect((try? JSONObjectReader.decode(past)) == nil)
        #expect((try? JSONObjectReader.decode(Answer.self, from: past)) == nil)
    }

    @Test func aClientStringThatLooksLikeAPlaceholderIsKept() throws {
        let body = Array(#"{"image":"\#(Self.long)","prompt":"sdgate-lifted-1-0"}"#.utf8)
        let object = try JSONObjectReader.decode(body)
        #expect(object["prompt"] == .string("sdgate-lifted-1-0"))
        #expect(object["image"] == .ascii(ASCIIText(Self.long)))
    }

    /// Arrays and objects nested deeper than `maxDepth` are refused before any value is built: a
    /// value is decoded by trying each kind in turn, and 19 KB of brackets 500 deep, sent without a
    /// key to `/api/v3`, cost seconds of CPU each. Brackets inside strings are not nesting.
    @Test func bodiesNestedTooDeeplyAreRefusedAndBracketsInStringsAreNot() throws {
        func nested(_ depth: Int) -> String { String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        func decoded(_ text: String) throws -> [String: JSONValue] { try JSONObjectReader.decode(Array(text.utf8)) }
        let deep: String = #"{"key":"x","a":["# + Array(repeating: nested(500), count: 19).joined(separator: ",") + "]}"
        #expect(throws: DecodingError.self) { try decoded(deep) }
        let opening: String = String(repeating: #"{"b":"#, count: 40)
        let deepObject: String = #"{"a":"# + opening + "1" + String(repeating: "}", count: 41)
        #expect(throws: DecodingError.self) { try decoded(deepObject) }
        // With a long string, the fast path's body is checked the same.
        let deepWithImage: String = #"{"image":""# + Self.long + #"","a":"# + nested(JSONObjectReader.maxDepth + 1) + "}"
        #expect(throws: DecodingError.self) { try decoded(deepWithImage) }

        let fits: String = #"{"a":"# + nested(JSONObjectReader.maxDepth - 1) + "}"
        #expect(try decoded(fits)["a"] != nil)
        let prompt = String(repeating: #"[(masterpiece:1.2)] \\ \"{"#, count: 200)
        let quoted: String = #"{"prompt":""# + prompt + #"","a":[1]}"#
        #expect(try decoded(quoted)["prompt"] != nil)
    }
}

extension JSONValue {
    /// The value as `JSONDecoder` gives it: long ASCII text as a `String` too.
    fileprivate var asDecoded: JSONValue {
        switch self {
        case .ascii(let text): .string(text.description)
        case .array(let values): .array(values.map(\.asDecoded))
        case .object(let members): .object(members.mapValues(\.asDecoded))
        default: self
        }
    }
}
