/// Text kept as the bytes it arrived in, all of them ASCII: the megabyte of base64 an image request
/// carries goes from the request body to an upstream without ever becoming a `String` (making one
/// validates and copies it).
public struct ASCIIText: Sendable, Equatable, CustomStringConvertible {
    public let bytes: ArraySlice<UInt8>

    /// `bytes` must all be below 0x80; the reader that found them checked so.
    public init(unchecked bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    public init(_ text: String) {
        bytes = ArraySlice(text.utf8)
    }

    public var count: Int { bytes.count }

    public var description: String { String(decoding: bytes, as: UTF8.self) }
}
