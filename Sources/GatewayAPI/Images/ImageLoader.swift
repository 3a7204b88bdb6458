public import Foundation
import ExtrasBase64
public import GenerationCore

/// Fetches an image URL for the gateway; the implementation enforces the address rules.
public protocol ImageFetcher: Sendable {
    /// The bytes at `url`, at most `maxBytes`; throws with a client-safe reason otherwise.
    func fetch(_ url: URL, maxBytes: Int) async throws(ImageProblem) -> [UInt8]
}

/// Why an input image was refused, in words a client can act on.
public struct ImageProblem: Error, Sendable, Equatable {
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
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

    public func load(_ text: String, maxSize: ImageSize) async throws(ImageProblem) -> InputImage {
        let (bytes, base64) = try await self.bytes(of: text)
        guard bytes.count <= limits.maxBytes else {
            throw ImageProblem("the image is \(bytes.count) bytes; the largest accepted is \(limits.maxBytes)")
        }
        guard let info = ImageInspector.inspect(bytes) else {
            throw ImageProblem("not a JPEG, PNG, WebP or GIF image")
        }
        guard info.width * info.height <= limits.maxPixels, info.width <= maxSize.width, info.height <= maxSize.height else {
            throw ImageProblem("the image is \(info.width)x\(info.height); the largest accepted is \(maxSize)")
        }
        return InputImage(bytes: bytes, info: info, base64: base64)
    }

    /// The image's bytes, and their standard base64 text unless they came from a URL.
    private func bytes(of text: String) async throws(ImageProblem) -> ([UInt8], base64: Substring?) {
        let trimmed = text.trimmingSpaces()
        if trimmed.hasPrefix("data:") { return try dataURI(trimmed) }
        let lowercased = trimmed.prefix(8).lowercased()
        if lowercased.hasPrefix("http://") || lowercased.hasPrefix("https://") {
            guard let fetcher else { throw ImageProblem("image URLs are not accepted by this gateway; send base64") }
            guard let url = URL(string: String(trimmed)) else { throw ImageProblem("not a valid URL") }
            return (try await fetcher.fetch(url, maxBytes: limits.maxBytes), nil)
        }
        guard let decoded = Self.base64(trimmed) else { throw ImageProblem("neither an http(s) URL nor valid base64") }
        return decoded
    }

    /// `data:image/png;base64,....`; the media type must be an image type sdgate reads.
    private func dataURI(_ text: Substring) throws(ImageProblem) -> ([UInt8], base64: Substring) {
        guard let comma = text.firstIndex(of: ",") else { throw ImageProblem("a data URI needs a comma before its data") }
        let header = text[text.index(text.startIndex, offsetBy: 5)..<comma].split(separator: ";")
        guard header.contains(where: { $0.lowercased() == "base64" }) else { throw ImageProblem("a data URI must be base64-encoded") }
        guard let mediaType = header.first, ImageInspector.format(ofMediaType: String(mediaType)) != nil else {
            throw ImageProblem("a data URI must have an image/jpeg, image/png, image/webp or image/gif media type")
        }
        guard let decoded = Self.base64(text[text.index(after: comma)...]) else { throw ImageProblem("the data URI holds invalid base64") }
        return decoded
    }

    /// Standard or URL-safe base64, with or without padding; line breaks are ignored. Returns the
    /// decoded bytes and the text in standard, padded base64. Canonical base64 is decoded where it
    /// lies; only what the decoder refuses is cleaned up and tried again (a megabyte scanned byte
    /// by byte costs as much as the decoding).
    static func base64(_ text: Substring) -> ([UInt8], base64: Substring)? {
        if !text.isEmpty, let decoded = try? Base64.decode(bytes: text.utf8) { return (decoded, text) }
        var bytes = Array(text.utf8)
        bytes.removeAll { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        for index in bytes.indices {
            if bytes[index] == UInt8(ascii: "-") { bytes[index] = UInt8(ascii: "+") }
            if bytes[index] == UInt8(ascii: "_") { bytes[index] = UInt8(ascii: "/") }
        }
        guard !bytes.isEmpty, bytes.count % 4 != 1 else { return nil }
        if bytes.count % 4 != 0 { bytes += Array(repeating: UInt8(ascii: "="), count: 4 - bytes.count % 4) }
        guard let decoded = try? Base64.decode(bytes: bytes) else { return nil }
        return (decoded, Substring(String(decoding: bytes, as: UTF8.self)))
    }
}
