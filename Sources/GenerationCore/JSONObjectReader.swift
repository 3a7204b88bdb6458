import CByteChecks
import Foundation
import Synchronization

/// Decodes a body as a JSON object, as `JSONDecoder` does, but without making it scan the
/// megabyte of base64 an image carries (a request's input image, an upstream's or a worker's
/// answer): Foundation's scanner reads a string byte by byte, which made it the largest cost of an
/// image request.
///
/// Strings are scanned for their end in one vectorised pass: their leading run of base64 characters
/// (`cbytes_base64_alphabet_run`), then the rest (`cbytes_json_string_special`), which also finds
/// what JSON forbids in them (control characters) and whether they are ASCII. Long
/// values without escapes are swapped for a short placeholder before the rest, now a few hundred
/// bytes, goes to `JSONDecoder`. A long value of ASCII (an image's base64) comes back as
/// `JSONValue.ascii`, the body's own bytes, never copied into a `String`; any other is checked to
/// be UTF-8 and made a `String`. Anything unusual — an escape in a long string, an unterminated
/// string, a placeholder that does not come back — falls back to decoding the body as it is, so
/// the answer is always `JSONDecoder`'s (long ASCII text aside, which it gives as a `String`).
public enum JSONObjectReader {
    /// Strings at least this long are lifted out; shorter ones cost the scanner next to nothing.
    package static let liftedLength = 16 << 10

    /// The most values a body may hold beside its long strings, counted by the bytes that open or
    /// separate them (`{`, `[`, `:` and `,`, in short strings too). A generation request holds a
    /// few dozen, an upstream's answer a few hundred. `JSONDecoder` builds every value before
    /// anything can look at one, at some 40 times its size in the body: 30 MB of `[0,0,0,…]`, sent
    /// without a key to a route that reads its key from the body, made the gateway hold more than
    /// a gigabyte.
    package static let maxValues = 10_000
    /// How deep arrays and objects may nest: the dialects' bodies go four or five deep at most.
    package static let maxDepth = 32

    public static func decode(_ body: [UInt8]) throws -> [String: JSONValue] {
        if body.count >= liftedLength, let lifted = try? decodeLifting(body) { return lifted }
        return try decodeWhole([String: JSONValue].self, body)
    }

    /// Decodes a `T` whose long strings are `LiftedText` fields, as `JSONDecoder` does; each such
    /// field that was lifted out is the body's own bytes. A long string anywhere else falls back
    /// to decoding the body as it is.
    public static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws -> T {
        if body.count >= liftedLength, let key = LiftedTable.key, let (rest, lifted) = lift(body) {
            try checkValueCount(rest)
            let table = LiftedTable(lifted)
            let decoder = JSONDecoder()
            decoder.userInfo[key] = table
            if let value = try? decoder.decode(T.self, from: Data(rest)), table.allTaken { return value }
        }
        return try decodeWhole(T.self, body)
    }

    private static func decodeWhole<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws -> T {
        try checkValueCount(body)
        return try body.withUnsafeBytes { bytes in
            guard let start = bytes.baseAddress else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "empty body")) }
            return try JSONDecoder().decode(
                T.self, from: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: start), count: bytes.count, deallocator: .none))
        }
    }

    /// Throws when `bytes` hold more than `maxValues` values, without counting far past them, or
    /// arrays and objects nested more than `maxDepth` deep: a value is decoded by trying each kind
    /// in turn, each try reading it whole, so a few kilobytes of brackets nested 500 deep cost
    /// seconds, sent by a stranger before any key is looked at (`/api/v3` reads the key from the body).
    private static func checkValueCount(_ bytes: [UInt8]) throws {
        var count = 0, depth = 0, inString = false, escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                depth += 1
                guard depth <= maxDepth else {
                    throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "nested more than \(maxDepth) deep"))
                }
            } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                depth -= 1
            }
            guard byte == UInt8(ascii: ",") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") else { continue }
            count += 1
            guard count <= maxValues else {
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "more than \(maxValues) values"))
            }
        }
    }

    /// nil (or an error) when the body is not one the fast path can decode exactly.
    package static func decodeLifting(_ body: [UInt8]) throws -> [String: JSONValue]? {
        guard let (rest, lifted) = lift(body) else { return nil }
        try checkValueCount(rest)
        var object = try JSONDecoder().decode([String: JSONValue].self, from: Data(rest))
        var restored = 0
        for (key, value) in object {
            object[key] = value.restoring(lifted, count: &restored)
        }
        return restored == lifted.count ? object : nil
    }

    /// The body with each long string swapped for a placeholder, and what each placeholder stands
    /// for; nil when there is no long string or the fast path gives up.
    private static func lift(_ body: [UInt8]) -> (rest: [UInt8], lifted: [String: JSONValue])? {
        let nonce = "sdgate-lifted-\(UInt64.random(in: .min ... .max))-"
        var rest: [UInt8] = []
        var lifted: [String: JSONValue] = [:]
        let complete = body.withUnsafeBufferPointer { buffer -> Bool in
            let base = buffer.baseAddress!
            var copied = 0, index = 0
            while index < buffer.count {
                guard let quote = find(UInt8(ascii: "\""), in: base, from: index, to: buffer.count) else { break }
                // A string opens here; find where it closes, stepping over escapes. A control
                // character, which JSON forbids in a string, ends the fast path. Its leading run of
                // base64 characters (none of them special) is measured first: for an image's
                // base64, that one pass finds the string's end and checks its alphabet, which the
                // image's check then need not read again.
                let run = Base64Alphabet.leadingRun(UnsafeBufferPointer(rebasing: buffer[(quote + 1)...]))
                var cursor = quote + 1 + run, escaped = false, nonASCII = false
                scanning: while cursor < buffer.count {
                    let special = cursor + cbytes_json_string_special(base + cursor, buffer.count - cursor, &nonASCII)
                    guard special < buffer.count else { return false }
                    switch base[special] {
                    case UInt8(ascii: "\""):
                        cursor = special
                        break scanning
                    case UInt8(ascii: "\\"):
                        escaped = true
                        cursor = special + 2
                    default:
                        return false
                    }
                }
                guard cursor < buffer.count else { return false }
                let contents = UnsafeBufferPointer(rebasing: buffer[(quote + 1)..<cursor])
                if !escaped, contents.count >= liftedLength {
                    let value: JSONValue
                    if !nonASCII {
                        value = .ascii(ASCIIText(unchecked: body[(quote + 1)..<cursor], base64Run: run))
                    } else {
                        guard let text = String(validating: contents, as: UTF8.self) else { return false }
                        value = .string(text)
                    }
                    let placeholder = nonce + String(lifted.count)
                    lifted[placeholder] = value
                    rest += UnsafeBufferPointer(rebasing: buffer[copied...quote])
                    rest += placeholder.utf8
                    copied = cursor
                }
                index = cursor + 1
            }
            // Nothing lifted: the body is decoded as it is, and is not copied first (it may be an
            // upstream's 64 MiB).
            guard !lifted.isEmpty else { return false }
            rest += UnsafeBufferPointer(rebasing: buffer[copied...])
            return true
        }
        guard complete, !lifted.isEmpty else { return nil }
        return (rest, lifted)
    }

    private static func find(_ byte: UInt8, in base: UnsafePointer<UInt8>, from start: Int, to end: Int) -> Int? {
        guard start < end, let found = memchr(base + start, Int32(byte), end - start) else { return nil }
        return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
    }
}

extension JSONValue {
    /// The value with every placeholder replaced by the string it stands for.
    fileprivate func restoring(_ lifted: [String: JSONValue], count: inout Int) -> JSONValue {
        switch self {
        case .string(let text):
            guard let original = lifted[text] else { return self }
            count += 1
            return original
        case .array(let values):
            return .array(values.map { $0.restoring(lifted, count: &count) })
        case .object(let members):
            return .object(members.mapValues { $0.restoring(lifted, count: &count) })
        default:
            return self
        }
    }
}

/// A string field that may be long (an image's base64): decoded by `JSONObjectReader.decode(_:from:)`,
/// it is `.ascii` with the body's own bytes when it was lifted out, and `.string` otherwise.
public struct LiftedText: Decodable, Sendable, Equatable {
    public let value: JSONValue

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        let table = LiftedTable.key.flatMap { decoder.userInfo[$0] as? LiftedTable }
        value = table?.take(text) ?? .string(text)
    }

    /// The text's UTF-8.
    public var bytes: ArraySlice<UInt8> {
        switch value {
        case .ascii(let text): text.bytes
        case .string(let text): ArraySlice(text.utf8)
        default: []
        }
    }
}

/// The strings lifted out of a body, handed to its `LiftedText` fields through the decoder, and how
/// many of them were taken: a placeholder left in any other field makes the decoding inexact.
final class LiftedTable: Sendable {
    static let key = CodingUserInfoKey(rawValue: "sdgate.lifted-strings")
    private let strings: [String: JSONValue]
    private let taken = Mutex(0)

    init(_ strings: [String: JSONValue]) {
        self.strings = strings
    }

    func take(_ placeholder: String) -> JSONValue? {
        guard let string = strings[placeholder] else { return nil }
        taken.withLock { $0 += 1 }
        return string
    }

    var allTaken: Bool { taken.withLock { $0 } == strings.count }
}
