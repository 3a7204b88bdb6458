import CByteChecks
import Foundation

/// JSON that carries long text (an image's base64), written without `JSONEncoder` seeing that
/// text. `JSONEncoder` escapes a string byte by byte: a megabyte of base64 took it about 3 ms, more
/// than everything else the gateway does for a proxied request. Each long text stands in the value
/// as a short placeholder; the encoded output, now a few hundred bytes, then has each placeholder
/// replaced by its text, which is copied once.
///
/// Text that JSON would need to escape (a quote, a backslash, a control character, anything not
/// ASCII) is never spliced: it goes through `JSONEncoder` as it is, so the output is always what
/// `JSONEncoder` would have written for the text itself, slashes unescaped (base64 is full of them).
public struct SplicedJSON {
    /// Unguessable, so that no other string of the value can be taken for a placeholder.
    private let nonce = "sdgate-spliced-\(UInt64.random(in: .min ... .max))-"
    private var texts: [ArraySlice<UInt8>] = []

    public init() {}

    /// The string to put in the value where `text` goes.
    public mutating func placeholder(for text: ArraySlice<UInt8>) -> String {
        var nonASCII = false
        let special = text.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.map { cbytes_json_string_special($0, buffer.count, &nonASCII) } ?? 0
        }
        guard special == text.count, !nonASCII else { return String(decoding: text, as: UTF8.self) }
        texts.append(text)
        return nonce + String(texts.count - 1)
    }

    /// The string to put in the value where the image's standard, padded base64 goes.
    public mutating func base64(of image: GeneratedImage) -> String {
        placeholder(for: image.base64.bytes)
    }

    /// `value` encoded, its placeholders replaced by their texts; `{}` if it cannot be encoded.
    public func encode(_ value: some Encodable, sortedKeys: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = sortedKeys ? [.sortedKeys, .withoutEscapingSlashes] : [.withoutEscapingSlashes]
        guard let encoded = try? encoder.encode(value) else { return Array("{}".utf8) }
        return splice(Array(encoded))
    }

    /// `encoded` with each quoted placeholder of this value replaced by its quoted text.
    func splice(_ encoded: [UInt8]) -> [UInt8] {
        guard !texts.isEmpty else { return encoded }
        let marker = Array(nonce.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(encoded.count + texts.reduce(0) { $0 + $1.count })
        var rest = encoded[...]
        while let found = rest.firstRange(of: marker) {
            let digits = rest[found.upperBound...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            guard let index = Int(String(decoding: digits, as: UTF8.self)), texts.indices.contains(index) else {
                output += rest[..<found.upperBound]
                rest = rest[found.upperBound...]
                continue
            }
            output += rest[..<found.lowerBound]
            output += texts[index]
            rest = rest[digits.endIndex...]
        }
        output += rest
        return output
    }
}
