import CByteChecks
import Foundation

/// Decodes a request body as a JSON object, as `JSONDecoder` does, but without making it scan the
/// megabyte of base64 an image field carries: Foundation's scanner reads a string byte by byte,
/// which made it the largest cost of an image request.
///
/// Long string values without escapes are found with `memchr` (vectorised by the C library),
/// checked for what JSON forbids in a string (control characters, invalid UTF-8), and swapped for
/// a short placeholder before the rest, now a few hundred bytes, goes to `JSONDecoder`. Anything
/// unusual — an escape in a long string, an unterminated string, a placeholder that does not come
/// back — falls back to decoding the body as it is, so the answer is always `JSONDecoder`'s.
enum JSONObjectReader {
    /// Strings at least this long are lifted out; shorter ones cost the scanner next to nothing.
    static let liftedLength = 16 << 10

    static func decode(_ body: [UInt8]) throws -> [String: JSONValue] {
        if body.count >= liftedLength, let lifted = try? decodeLifting(body) { return lifted }
        return try body.withUnsafeBytes { bytes in
            guard let start = bytes.baseAddress else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "empty body")) }
            return try JSONDecoder().decode([String: JSONValue].self,
                                            from: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: start), count: bytes.count, deallocator: .none))
        }
    }

    /// nil (or an error) when the body is not one the fast path can decode exactly.
    static func decodeLifting(_ body: [UInt8]) throws -> [String: JSONValue]? {
        let nonce = "sdgate-lifted-\(UInt64.random(in: .min ... .max))-"
        var rest: [UInt8] = []
        var lifted: [String: String] = [:]
        let complete = body.withUnsafeBufferPointer { buffer -> Bool in
            let base = buffer.baseAddress!
            var copied = 0, index = 0
            while index < buffer.count {
                guard let quote = find(UInt8(ascii: "\""), in: base, from: index, to: buffer.count) else { break }
                // A string opens here; find where it closes, stepping over escapes.
                var cursor = quote + 1, escaped = false
                while true {
                    guard let close = find(UInt8(ascii: "\""), in: base, from: cursor, to: buffer.count) else { return false }
                    if let backslash = find(UInt8(ascii: "\\"), in: base, from: cursor, to: close) {
                        escaped = true
                        cursor = backslash + 2
                        continue
                    }
                    cursor = close
                    break
                }
                let contents = UnsafeBufferPointer(rebasing: buffer[(quote + 1)..<cursor])
                if !escaped, contents.count >= liftedLength {
                    guard !hasControlCharacter(contents), let text = String(validating: contents, as: UTF8.self) else { return false }
                    let placeholder = nonce + String(lifted.count)
                    lifted[placeholder] = text
                    rest += UnsafeBufferPointer(rebasing: buffer[copied...quote])
                    rest += placeholder.utf8
                    copied = cursor
                }
                index = cursor + 1
            }
            rest += UnsafeBufferPointer(rebasing: buffer[copied...])
            return true
        }
        guard complete, !lifted.isEmpty else { return nil }
        var object = try JSONDecoder().decode([String: JSONValue].self, from: Data(rest))
        var restored = 0
        for (key, value) in object {
            object[key] = value.restoring(lifted, count: &restored)
        }
        return restored == lifted.count ? object : nil
    }

    private static func find(_ byte: UInt8, in base: UnsafePointer<UInt8>, from start: Int, to end: Int) -> Int? {
        guard start < end, let found = memchr(base + start, Int32(byte), end - start) else { return nil }
        return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
    }

    /// Whether any byte is below 0x20, which JSON forbids unescaped in a string. Vectorised.
    static func hasControlCharacter(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let start = bytes.baseAddress else { return false }
        return cbytes_any_below(start, bytes.count, 0x20)
    }
}

private extension JSONValue {
    /// The value with every placeholder replaced by the string it stands for.
    func restoring(_ lifted: [String: String], count: inout Int) -> JSONValue {
        switch self {
        case .string(let text):
            guard let original = lifted[text] else { return self }
            count += 1
            return .string(original)
        case .array(let values):
            return .array(values.map { $0.restoring(lifted, count: &count) })
        case .object(let members):
            return .object(members.mapValues { $0.restoring(lifted, count: &count) })
        default:
            return self
        }
    }
}
