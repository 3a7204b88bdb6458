import ExtrasBase64
public import Foundation
public import GenerationCore

/// Fetches an image URL for the gateway; the implementation enforces the address rules.
public protocol ImageFetcher: Sendable {
    /// The bytes at `url`, at most `maxBytes`; throws with a client-safe reason otherwise.
    func fetch(_ url: URL, maxBytes: Int) async throws(ImageProblem) -> [UInt8]
}

/// Why an input image was refused, in words a client can act on.
public struct ImageProblem: Error, Sendable, Equatable {
    public let reason: String
    /// The gateway could not take the image now (too many being received): a retry may pass.
    public var busy = false

    public init(_ reason: String, busy: Bool = false) {
        self.reason = reason
        self.busy = busy
    }
}

/// Turns an `image` field (raw base64, a `data:` URI or an http(s) URL) into checked image bytes.
/// The format and size come from the bytes' header, before any pixel is decoded.
public struct ImageLoader: Sendable {
    public struct Limits: Sendable {
        /// Largest image, decoded, in bytes.
        public var maxBytes = 20 << 20
        /// Most pixels (width × height): a small file can still describe a huge image.
        public var maxPixels = 4096 * 4096

        public init() {}
    }

    public let limits: Limits
    /// nil: URL inputs are refused.
    public let fetcher: (any ImageFetcher)?

    public init(limits: Limits = Limits(), fetcher: (any ImageFetcher)?) {
        self.limits = limits
        self.fetcher = fetcher
    }

    /// Loads an image field's value: text, or long text the request's reader kept as its bytes.
    public func load(_ value: FieldValue, maxSize: ImageSize) async throws(ImageProblem) -> InputImage {
        // The field's UTF-8, and how many of its first bytes the body's reader saw to be base64.
        let (trimmed, knownRun): (ArraySlice<UInt8>, Int) =
            switch value {
            // A JSON string holds no raw control characters: space is the only white space left.
            case .ascii(let text): Self.trimmingSpaces(text)
            default: (ArraySlice(value.description.trimmingSpaces().utf8), 0)
            }
        // The bytes fetched from a URL, or base64 text: for long text only the first bytes are
        // decoded (the header lies there).
        let (head, count, base64): ([UInt8], Int, CheckedBase64?) =
            switch try await image(in: trimmed, knownRun: knownRun) {
            case .fetched(let bytes): (bytes, bytes.count, nil)
            case .base64(let checked): (checked.head, checked.count, checked)
            }
        guard count <= limits.maxBytes else {
            throw ImageProblem("the image is \(count) bytes; the largest accepted is \(limits.maxBytes)")
        }
        let info = if let base64 { base64.imageInfo() } else { ImageInspector.inspect(head) }
        guard let info else {
            throw ImageProblem("not a JPEG, PNG, WebP or GIF image")
        }
        guard info.width * info.height <= limits.maxPixels, info.width <= maxSize.width, info.height <= maxSize.height else {
            throw ImageProblem("the image is \(info.width)x\(info.height); the largest accepted is \(maxSize)")
        }
        guard let base64, !base64.isWhole else { return InputImage(bytes: head, info: info, base64: base64?.text) }
        return InputImage(base64: base64.text, info: info)
    }

    private enum Checked {
        case fetched([UInt8])
        case base64(CheckedBase64)
    }

    /// `text` is the field's UTF-8, white space trimmed.
    private func image(in text: ArraySlice<UInt8>, knownRun: Int) async throws(ImageProblem) -> Checked {
        if Self.starts(text, with: "data:") { return try dataURI(text) }
        if Self.starts(text, with: "http://") || Self.starts(text, with: "https://") {
            guard let fetcher else { throw ImageProblem("image URLs are not accepted by this gateway; send base64") }
            guard let url = URL(string: String(decoding: text, as: UTF8.self)) else { throw ImageProblem("not a valid URL") }
            return .fetched(try await fetcher.fetch(url, maxBytes: limits.maxBytes))
        }
        guard let checked = Self.base64(text, knownRun: knownRun) else { throw ImageProblem("neither an http(s) URL nor valid base64") }
        return .base64(checked)
    }

    /// `data:image/png;base64,....`; the media type must be an image type sdgate reads.
    private func dataURI(_ text: ArraySlice<UInt8>) throws(ImageProblem) -> Checked {
        guard let comma = text.firstIndex(of: UInt8(ascii: ",")) else { throw ImageProblem("a data URI needs a comma before its data") }
        let header = String(decoding: text[(text.startIndex + 5)..<comma], as: UTF8.self).split(separator: ";")
        guard header.contains(where: { $0.lowercased() == "base64" }) else { throw ImageProblem("a data URI must be base64-encoded") }
        guard let mediaType = header.first, ImageInspector.format(ofMediaType: String(mediaType)) != nil else {
            throw ImageProblem("a data URI must have an image/jpeg, image/png, image/webp or image/gif media type")
        }
        guard let checked = Self.base64(text[(comma + 1)...]) else { throw ImageProblem("the data URI holds invalid base64") }
        return .base64(checked)
    }

    /// Whether `text` starts with `prefix`, ignoring ASCII case.
    private static func starts(_ text: ArraySlice<UInt8>, with prefix: StaticString) -> Bool {
        let prefix = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        guard text.count >= prefix.count else { return false }
        return zip(text, prefix).allSatisfy { byte, expected in (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) == expected }
    }

    /// The text without its leading and trailing spaces, and how much of it its reader saw to be
    /// base64: a space is no base64 character, so after leading spaces it saw none.
    private static func trimmingSpaces(_ text: ASCIIText) -> (ArraySlice<UInt8>, knownRun: Int) {
        let bytes = text.bytes
        guard let first = bytes.firstIndex(where: { $0 != 0x20 }), let last = bytes.lastIndex(where: { $0 != 0x20 }) else {
            return (bytes[bytes.endIndex...], 0)
        }
        return (bytes[first...last], first == bytes.startIndex ? text.base64Run : 0)
    }

    /// Standard or URL-safe base64, with or without padding; line breaks are ignored. Canonical text
    /// is checked where it lies, and only its head decoded (`CheckedBase64`): the rest is forwarded
    /// or decoded later as it is. Text the checks refuse is cleaned up and decoded whole (a megabyte
    /// scanned byte by byte costs as much as the decoding).
    static func base64(_ text: ArraySlice<UInt8>, knownRun: Int = 0) -> CheckedBase64? {
        if let checked = CheckedBase64(text, knownRun: knownRun) { return checked }
        var bytes = Array(text)
        bytes.removeAll { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        for index in bytes.indices {
            if bytes[index] == UInt8(ascii: "-") { bytes[index] = UInt8(ascii: "+") }
            if bytes[index] == UInt8(ascii: "_") { bytes[index] = UInt8(ascii: "/") }
        }
        guard !bytes.isEmpty, bytes.count % 4 != 1 else { return nil }
        if bytes.count % 4 != 0 { bytes += Array(repeating: UInt8(ascii: "="), count: 4 - bytes.count % 4) }
        guard let decoded = try? Base64.decode(bytes: bytes) else { return nil }
        // Decoded, so of the alphabet and padding only: ASCII.
        return CheckedBase64(text: ASCIIText(unchecked: bytes[...]), head: decoded, count: decoded.count)
    }
}
