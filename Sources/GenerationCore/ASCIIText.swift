/// Text kept as the bytes it arrived in, all of them ASCII: the megabyte of base64 an image request
/// carries goes from the request body to an upstream without ever becoming a `String` (making one
/// validates and copies it).
public struct ASCIIText: Sendable, Equatable, CustomStringConvertible {
    public let bytes: ArraySlice<UInt8>
    /// How many of the first bytes the reader that found the text saw to be of the base64 alphabet
    /// (0 when it did not look): a base64 check need not read them again.
    public let base64Run: Int

    /// `bytes` must all be below 0x80; the reader that found them checked so.
    public init(unchecked bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        base64Run = 0
    }

    /// The same, and the first `base64Run` bytes must be of the base64 alphabet: a check of the
    /// text's base64 trusts them.
    package init(unchecked bytes: ArraySlice<UInt8>, base64Run: Int) {
        self.bytes = bytes
        self.base64Run = min(max(base64Run, 0), bytes.count)
    }

    public init(_ text: String) {
        bytes = ArraySlice(text.utf8)
        base64Run = 0
    }

    public var count: Int { bytes.count }

    public var description: String { String(decoding: bytes, as: UTF8.self) }

    /// Equal texts are equal whatever their readers measured.
    public static func == (lhs: ASCIIText, rhs: ASCIIText) -> Bool {
        lhs.bytes == rhs.bytes
    }
}
