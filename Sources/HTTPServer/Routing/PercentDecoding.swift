/// Percent-decoding (RFC 3986 §2.1) in one pass over the bytes: of a path segment, or, with
/// `plusIsSpace`, of a name or value of a query or an `application/x-www-form-urlencoded` body,
/// where `+` stands for a space. Foundation's `replacingOccurrences` and `removingPercentEncoding`
/// took seconds over a few megabytes of `+`, which a body sent without a key could hold.
public enum PercentDecoding {
    /// The text `encoded` stands for; nil for a malformed escape or bytes that are not UTF-8.
    ///
    /// The bytes are decoded where they lie, by code compiled for a buffer of bytes: called
    /// generically from another module, a collection is walked one byte at a time through its
    /// iterator's witness, at about 50 ns a byte (1.5 s for the 31 MiB a form may hold).
    public static func decode(_ encoded: some Collection<UInt8>, plusIsSpace: Bool) -> String? {
        if let decoded = encoded.withContiguousStorageIfAvailable({ decode(buffer: $0, plusIsSpace: plusIsSpace) }) {
            return decoded
        }
        return Array(encoded).withUnsafeBufferPointer { decode(buffer: $0, plusIsSpace: plusIsSpace) }
    }

    private static func decode(buffer encoded: UnsafeBufferPointer<UInt8>, plusIsSpace: Bool) -> String? {
        var malformed = false
        // Decoded text is never longer than its escapes.
        let bytes = [UInt8](unsafeUninitializedCapacity: encoded.count) { output, written in
            var index = 0
            while index < encoded.count {
                let byte = encoded[index]
                index += 1
                if byte == UInt8(ascii: "%") {
                    guard index + 1 < encoded.count, let high = ByteClass.hexValue(encoded[index]),
                        let low = ByteClass.hexValue(encoded[index + 1])
                    else {
                        malformed = true
                        break
                    }
                    output[written] = UInt8(high * 16 + low)
                    index += 2
                } else {
                    output[written] = plusIsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte
                }
                written += 1
            }
        }
        return malformed ? nil : String(validating: bytes, as: UTF8.self)
    }
}
