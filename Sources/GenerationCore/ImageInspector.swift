/// Reads an input image's format and dimensions from its first bytes, before any pixel is decoded.
///
/// Clients send images as base64, data URIs or URLs, and may claim any format; the gateway trusts
/// only the bytes. Anything that is not a well-formed header of a supported format is refused here,
/// and the size read here is what callers check against their limits (decompression bombs) before
/// a decoder ever sees the bytes.
///
/// The input is untrusted: every read goes through `Reader`, which answers nil past the end, and
/// every length taken from the data is checked before it moves an offset.
public enum ImageInspector {
    /// The format and dimensions of `bytes`, read from the header only; nil when the bytes are not a
    /// complete header of a supported format (JPEG, PNG, WebP, GIF).
    ///
    /// Takes `[UInt8]`, `ArraySlice<UInt8>`, `Data` or `UnsafeRawBufferPointer` without copying.
    /// Both dimensions are at least 1; a VP8X WebP canvas may be up to 2^24 on a side.
    public static func inspect(_ bytes: some RandomAccessCollection<UInt8>) -> ImageInfo? {
        let reader = Reader(base: bytes)
        // The signatures exclude one another, so at most one of these gets past its first check.
        return png(reader) ?? jpeg(reader) ?? gif(reader) ?? webp(reader)
    }

    /// The format a media type names (`image/jpeg; charset=binary` as in a data URI), ignoring case,
    /// parameters and surrounding spaces; nil for anything else.
    public static func format(ofMediaType mediaType: String) -> ImageFormat? {
        let essence = mediaType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        switch essence.trimmingSpaces.lowercased() {
        case "image/jpeg", "image/jpg": return .jpeg
        case "image/png": return .png
        case "image/webp": return .webp
        case "image/gif": return .gif
        default: return nil
        }
    }

    // MARK: - PNG

    /// PNG (ISO/IEC 15948, §5.2, §5.3, §11.2.2): the 8-byte signature, then IHDR must be the first
    /// chunk: length (u32 BE, always 13), type "IHDR", width and height (u32 BE, 1...2^31-1), bit
    /// depth, colour type, compression, filter and interlace method (one byte each), CRC.
    private static func png(_ r: Reader<some RandomAccessCollection<UInt8>>) -> ImageInfo? {
        guard r.matches([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], at: 0),
            r.be32(8) == 13, r.matches("IHDR".utf8, at: 12),
            let width = r.be32(16), let height = r.be32(20),
            let depth = r.u8(24), let colourType = r.u8(25),
            r.u8(26) == 0, r.u8(27) == 0, let interlace = r.u8(28), interlace <= 1
        else { return nil }
        // The allowed bit depths per colour type (§11.2.2, table 11.1): a cheap check that the
        // header is a real one, not a signature followed by noise.
        let depths: [UInt8] =
            switch colourType {
            case 0: [1, 2, 4, 8, 16]  // greyscale
            case 3: [1, 2, 4, 8]  // indexed
            case 2, 4, 6: [8, 16]  // truecolour, greyscale + alpha, truecolour + alpha
            default: []
            }
        guard depths.contains(depth) else { return nil }
        return info(.png, width, height, max: Int(Int32.max))
    }

    // MARK: - JPEG

    /// JPEG (ITU-T T.81, §B.1.1): SOI (FF D8), then marker segments, each FF, a marker code, and
    /// (for all but the standalone markers) a u16 BE length that counts itself, then the payload.
    /// Any number of FF fill bytes may precede a marker (§B.1.1.2). The frame header SOFn (§B.2.2)
    /// holds: length (8 + 3 per component), sample precision (1 byte), number of lines (u16 BE),
    /// samples per line (u16 BE), number of components, then 3 bytes per component.
    ///
    /// Segments are walked by their lengths, never scanned for FF C0: APP1 (EXIF) often carries a
    /// thumbnail JPEG whose own frame header comes first in the file.
    private static func jpeg(_ r: Reader<some RandomAccessCollection<UInt8>>) -> ImageInfo? {
        guard r.u8(0) == 0xFF, r.u8(1) == 0xD8 else { return nil }
        var offset = 2
        while true {  // Each pass moves `offset` forward by at least 2, and reads fail past the end.
            guard r.u8(offset) == 0xFF else { return nil }  // Truncated, or garbage between segments.
            while r.u8(offset) == 0xFF { offset += 1 }
            guard let marker = r.u8(offset) else { return nil }
            offset += 1
            switch marker {
            case 0x01, 0xD0...0xD8: continue  // TEM, RSTn, SOI: standalone, no length (§B.1.1.3).
            case 0x00, 0xD9, 0xDA: return nil  // A stuffed byte is no marker; EOI or SOS before any frame.
            default: break
            }
            guard let length = r.be16(offset), length >= 2, length <= r.count - offset else { return nil }
            if isStartOfFrame(marker) {
                guard let components = r.u8(offset + 7), components > 0, length == 8 + 3 * Int(components),
                    let height = r.be16(offset + 3), let width = r.be16(offset + 5)
                else { return nil }
                // A height of 0 is legal (a DNL marker after the first scan gives it), but it
                // cannot be checked against limits up front, so such images are refused.
                return info(.jpeg, width, height)
            }
            offset += length
        }
    }

    /// SOF0-3, 5-7, 9-11, 13-15 (T.81 table B.1). C4 (DHT), C8 (JPG, reserved) and CC (DAC) sit in
    /// the same range but are not frame headers.
    private static func isStartOfFrame(_ marker: UInt8) -> Bool {
        (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker)
    }

    // MARK: - GIF

    /// GIF (GIF89a specification, §17, §18): "GIF87a" or "GIF89a", then the 7-byte Logical Screen
    /// Descriptor: width and height (u16 LE), packed fields, background colour index, aspect ratio.
    /// The logical screen is the image's size as decoders report it (frames are placed inside it).
    private static func gif(_ r: Reader<some RandomAccessCollection<UInt8>>) -> ImageInfo? {
        guard r.matches("GIF87a".utf8, at: 0) || r.matches("GIF89a".utf8, at: 0),
            r.count >= 13, let width = r.le16(6), let height = r.le16(8)
        else { return nil }
        return info(.gif, width, height)
    }

    // MARK: - WebP

    /// WebP (RFC 9649, §2.4, §2.5): "RIFF", u32 LE size of what follows ("WEBP" and the chunks),
    /// "WEBP", then the first chunk: FourCC, u32 LE payload size, payload (at file offset 20).
    private static func webp(_ r: Reader<some RandomAccessCollection<UInt8>>) -> ImageInfo? {
        guard r.matches("RIFF".utf8, at: 0), let riffSize = r.le32(4), r.matches("WEBP".utf8, at: 8),
            let chunkSize = r.le32(16), chunkSize <= riffSize - 12  // The chunk must fit in the RIFF.
        else { return nil }
        if r.matches("VP8 ".utf8, at: 12) {
            // Lossy (RFC 6386, §9.1): a 3-byte frame tag (u24 LE: bit 0 is 0 for a key frame, bits
            // 1-3 the version (0-3), bit 4 show_frame, bits 5-23 the first partition's size), start
            // code 9D 01 2A, then width and height as u16 LE: 14 bits of size, 2 of upscaling.
            guard chunkSize >= 10, let tag = r.le24(20),
                tag & 1 == 0, (tag >> 1) & 7 <= 3, (tag >> 4) & 1 == 1, tag >> 5 < chunkSize,
                r.matches([0x9D, 0x01, 0x2A], at: 23), let width = r.le16(26), let height = r.le16(28)
            else { return nil }
            return info(.webp, width & 0x3FFF, height & 0x3FFF)
        }
        if r.matches("VP8L".utf8, at: 12) {
            // Lossless (RFC 9649, §3.2): signature byte 2F, then a u32 LE holding, from the lowest
            // bit: width - 1 (14 bits), height - 1 (14 bits), alpha hint (1), version (3, must be 0).
            guard chunkSize >= 5, r.u8(20) == 0x2F, let bits = r.le32(21), bits >> 29 == 0 else { return nil }
            return info(.webp, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        }
        if r.matches("VP8X".utf8, at: 12) {
            // Extended (RFC 9649, §2.7): a 10-byte payload: flags (1 byte, then 3 reserved), canvas
            // width - 1 and height - 1 (u24 LE each), whose product must fit in 32 bits.
            guard chunkSize == 10, let width = r.le24(24).map({ $0 + 1 }), let height = r.le24(27).map({ $0 + 1 }),
                width * height <= Int(UInt32.max)
            else { return nil }
            return info(.webp, width, height)
        }
        return nil
    }

    // MARK: - Reading

    private static func info(_ format: ImageFormat, _ width: Int, _ height: Int, max: Int = .max) -> ImageInfo? {
        guard (1...max).contains(width), (1...max).contains(height) else { return nil }
        return ImageInfo(format: format, width: width, height: height)
    }

    /// Bounds-checked reads at offsets from the start of the bytes: nil for anything past the end.
    private struct Reader<Base: RandomAccessCollection<UInt8>> {
        let base: Base

        var count: Int { base.count }

        func u8(_ offset: Int) -> UInt8? {
            guard offset >= 0, offset < base.count else { return nil }
            return base[base.index(base.startIndex, offsetBy: offset)]
        }

        func matches(_ expected: some Sequence<UInt8>, at offset: Int) -> Bool {
            var at = offset
            for byte in expected {
                guard u8(at) == byte else { return false }
                at += 1
            }
            return true
        }

        /// The unsigned integer in the `size` bytes at `offset`, most significant byte first or last.
        private func integer(at offset: Int, size: Int, bigEndian: Bool) -> Int? {
            var value = 0
            for index in 0..<size {
                guard let byte = u8(offset + (bigEndian ? index : size - 1 - index)) else { return nil }
                value = value << 8 | Int(byte)
            }
            return value
        }

        func be16(_ offset: Int) -> Int? { integer(at: offset, size: 2, bigEndian: true) }
        func be32(_ offset: Int) -> Int? { integer(at: offset, size: 4, bigEndian: true) }
        func le16(_ offset: Int) -> Int? { integer(at: offset, size: 2, bigEndian: false) }
        func le24(_ offset: Int) -> Int? { integer(at: offset, size: 3, bigEndian: false) }
        func le32(_ offset: Int) -> Int? { integer(at: offset, size: 4, bigEndian: false) }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var trimmed = self
        while trimmed.first?.isWhitespace == true { trimmed.removeFirst() }
        while trimmed.last?.isWhitespace == true { trimmed.removeLast() }
        return trimmed
    }
}
