import ExtrasBase64

/// Standard, padded base64 text (an image's), checked where it lies and decoded only as far as its
/// head: a megabyte of base64 costs about as much to decode as to encode again, and the gateway
/// mostly forwards it as it came (to an upstream, or to the member in the answer). Any four
/// characters of the alphabet decode, so checking that the text between its head and its last
/// quad (the only one that may hold padding) is of the alphabet proves that all of it decodes.
public struct CheckedBase64: Sendable {
    /// The text, all of it ASCII.
    public let text: ASCIIText
    /// The first bytes the text decodes to, where an image's header lies; all of them for short text.
    public let head: [UInt8]
    /// How many bytes the whole text decodes to.
    public let count: Int

    /// Quads of text decoded for the head: 3 KiB, where the header of nearly every image lies (a
    /// JPEG's after its metadata segments, when they are short).
    public static let headQuads = 1_024
    /// Quads decoded to look further for a header that runs past the head: 48 KiB, which holds the
    /// metadata of nearly every JPEG. Past that, the whole text is decoded.
    static let longHeadQuads = 16_384

    /// nil unless `characters` is standard, padded base64 of at least one byte. The first
    /// `knownRun` characters are known to be of the alphabet (a reader measured them) and are not
    /// checked again.
    public init?(_ characters: ArraySlice<UInt8>, knownRun: Int = 0) {
        guard !characters.isEmpty, characters.count % 4 == 0 else { return nil }
        let quads = characters.count / 4
        guard quads > Self.headQuads + 1 else {
            guard let bytes = try? Base64.decode(bytes: characters) else { return nil }
            self.init(text: ASCIIText(unchecked: characters), head: bytes, count: bytes.count)
            return
        }
        let checked = characters.withUnsafeBufferPointer { buffer -> (head: [UInt8], count: Int)? in
            let headEnd = Self.headQuads * 4, tailStart = buffer.count - 4
            let unchecked = min(max(headEnd, knownRun), tailStart)..<tailStart
            // The head is decoded as text of its own, which may end in padding; here only the
            // last quad may.
            guard let head = try? Base64.decode(bytes: buffer[..<headEnd]), head.count == Self.headQuads * 3,
                let tail = try? Base64.decode(bytes: buffer[tailStart...]),
                Base64Alphabet.holdsOnlyItsCharacters(UnsafeBufferPointer(rebasing: buffer[unchecked]))
            else { return nil }
            return (head, (quads - 1) * 3 + tail.count)
        }
        guard let checked else { return nil }
        self.init(text: ASCIIText(unchecked: characters), head: checked.head, count: checked.count)
    }

    /// A long text of a body: what its reader saw to be of the alphabet is not checked again.
    public init?(_ text: LiftedText) {
        let knownRun = if case .ascii(let ascii) = text.value { ascii.base64Run } else { 0 }
        self.init(text.bytes, knownRun: knownRun)
    }

    /// Text already decoded whole, as `head`.
    package init(text: ASCIIText, head: [UInt8], count: Int) {
        self.text = text
        self.head = head
        self.count = count
    }

    public var isWhole: Bool { head.count == count }

    /// The image's format and size from its header: in the head, or, for a header that runs past it
    /// (a JPEG with long metadata), in the first 48 KiB, then in all the bytes, decoded for that.
    public func imageInfo() -> ImageInfo? {
        if let info = ImageInspector.inspect(head) { return info }
        if isWhole { return nil }
        let longHead = text.bytes.prefix(Self.longHeadQuads * 4)
        if longHead.count < text.count, let bytes = try? Base64.decode(bytes: longHead), let info = ImageInspector.inspect(bytes) {
            return info
        }
        return ImageInspector.inspect(whole())
    }

    /// All the bytes: the head when it is all of them, else the text decoded now.
    public func whole() -> [UInt8] {
        isWhole ? head : (try? Base64.decode(bytes: text.bytes)) ?? []
    }
}
