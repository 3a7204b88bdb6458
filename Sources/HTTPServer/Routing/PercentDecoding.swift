/// Percent-decoding (RFC 3986 §2.1) in one pass over the bytes: of a path segment, or, with
/// `plusIsSpace`, of a name or value of a query or an `application/x-www-form-urlencoded` body,
/// where `+` stands for a space. Foundation's `replacingOccurrences` and `removingPercentEncoding`
/// took seconds over a few megabytes of `+`, which a body sent without a key could hold.
public enum PercentDecoding {
    /// The text `encoded` stands for; nil for a malformed escape or bytes that are not UTF-8.
    public static func decode(_ encoded: some Collection<UInt8>, plusIsSpace: Bool) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encoded.count)
        var iterator = encoded.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(ByteClass.hexValue), let low = iterator.next().flatMap(ByteClass.hexValue) else {
                    return nil
                }
                bytes.append(UInt8(high * 16 + low))
            case UInt8(ascii: "+") where plusIsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
