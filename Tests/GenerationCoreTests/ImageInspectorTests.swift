import Foundation
import Testing

@testable import GenerationCore

/// Real images in `Fixtures/images`, named `anything-WIDTHxHEIGHT.ext`, and headers built by hand
/// around one defect each. The inspector must read the right size from every real image, nil or the
/// right size from every truncation of one, and nil from anything malformed.
@Suite("Image inspector")
struct ImageInspectorTests {
    // MARK: - Real images

    static let folder = Bundle.module.url(forResource: "Fixtures/images", withExtension: nil)

    /// Every fixture's name; `fixturesCoverEveryVariant` fails when the folder is missing or thin.
    static let fixtureNames: [String] = {
        guard let folder else { return [] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }()

    static func bytes(of name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/images/\(name)", withExtension: nil))
        return Array(try Data(contentsOf: url))
    }

    /// What a fixture's name promises: `photo-640x480.jpg` is a 640x480 JPEG.
    static func expectation(of name: String) throws -> ImageInfo {
        let dot = try #require(name.lastIndex(of: "."))
        let format: ImageFormat? =
            switch name[dot...] {
            case ".jpg", ".jpeg": .jpeg
            case ".png": .png
            case ".webp": .webp
            case ".gif": .gif
            default: nil
            }
        let size = try #require(name[..<dot].split(separator: "-").last).split(separator: "x")
        try #require(size.count == 2, "\(name) does not end in -WIDTHxHEIGHT")
        return ImageInfo(
            format: try #require(format, "\(name) has no image extension"),
            width: try #require(Int(size[0])), height: try #require(Int(size[1]))
        )
    }

    @Test("a fixture gives the format and size in its name", arguments: fixtureNames)
    func fixture(name: String) throws {
        #expect(ImageInspector.inspect(try Self.bytes(of: name)) == (try Self.expectation(of: name)))
    }

    @Test(
        "every truncation of a fixture gives nil or the right answer, once right always right",
        arguments: fixtureNames)
    func truncations(name: String) throws {
        let bytes = try Self.bytes(of: name)
        let expected = try Self.expectation(of: name)
        var firstAnswer: Int?
        for length in 0...bytes.count {
            let info = ImageInspector.inspect(bytes[..<length])
            if let info {
                #expect(info == expected, "\(name) cut at \(length)")
                firstAnswer = firstAnswer ?? length
            } else {
                #expect(firstAnswer == nil, "\(name) cut at \(length) lost the answer found at \(firstAnswer ?? 0)")
            }
        }
        // PNG, GIF and WebP keep the size within a fixed header; only JPEG's may follow metadata.
        let answeredAt = try #require(firstAnswer, "\(name) never inspected")
        if expected.format != .jpeg {
            #expect(answeredAt <= 32, "\(name) needed \(answeredAt) bytes")
        }
    }

    @Test("the fixtures cover every format, size range and header variant")
    func fixturesCoverEveryVariant() throws {
        let infos = try Self.fixtureNames.map { ($0, try Self.bytes(of: $0), try Self.expectation(of: $0)) }
        for format in ImageFormat.allCases {
            let sizes = Set(infos.filter { $0.2.format == format }.map { "\($0.2.width)x\($0.2.height)" })
            #expect(sizes.count >= 2, "\(format) fixtures: \(sizes)")
            // Sizes past 32767 catch sign and byte-order mistakes in 16-bit fields.
            #expect(infos.contains { $0.2.format == format && $0.2.width > 16000 }, "no wide \(format) fixture")
        }
        func has(_ bytes: [UInt8], _ needle: [UInt8]) -> Bool {
            bytes.indices.contains { bytes[$0...].starts(with: needle) }
        }
        let webpChunks = Set(infos.filter { $0.2.format == .webp }.map { String(decoding: $0.1[12..<16], as: UTF8.self) })
        #expect(webpChunks == ["VP8 ", "VP8L", "VP8X"])
        let gifVersions = Set(infos.filter { $0.2.format == .gif }.map { String(decoding: $0.1[0..<6], as: UTF8.self) })
        #expect(gifVersions == ["GIF87a", "GIF89a"])
        let jpegs = infos.filter { $0.2.format == .jpeg }.map(\.1)
        #expect(jpegs.contains { has($0, [0xFF, 0xC2]) }, "no progressive JPEG")
        // EXIF with an embedded thumbnail: a second SOI, so a second frame header before the image's.
        #expect(jpegs.contains { has($0, [0xFF, 0xE1]) && has($0, Array("Exif".utf8)) && has(Array($0.dropFirst()), [0xFF, 0xD8]) })
    }

    @Test("slices, Data and raw buffers are read from their own start")
    func collections() throws {
        let bytes = try Self.bytes(of: "exif-thumbnail-320x240.jpg")
        let expected = ImageInfo(format: .jpeg, width: 320, height: 240)
        let padded = [0xFF, 0xD8, 0x00] + bytes
        #expect(ImageInspector.inspect(padded[3...]) == expected)
        #expect(ImageInspector.inspect(padded) == nil)
        #expect(ImageInspector.inspect(Data(bytes)) == expected)
        #expect(ImageInspector.inspect(Data(padded).dropFirst(3)) == expected)
        bytes.withUnsafeBytes { #expect(ImageInspector.inspect($0) == expected) }
    }

    @Test("fill bytes and standalone markers before the frame header are skipped")
    func jpegFillBytesAndStandaloneMarkers() throws {
        let photo = try Self.bytes(of: "photo-640x480.jpg")
        let expected = ImageInfo(format: .jpeg, width: 640, height: 480)
        let inserts: [[UInt8]] = [[0xFF], [0xFF, 0xFF, 0xFF], [0xFF, 0x01], [0xFF, 0xD0, 0xFF, 0xD7], [0xFF, 0xD8]]
        for insert in inserts {
            #expect(ImageInspector.inspect(Array(photo[..<2]) + insert + photo[2...]) == expected, "\(insert)")
        }
    }

    // MARK: - Headers built by hand

    @Test("a hand-built header of each kind is valid before it is broken")
    func handBuiltHeaders() {
        let cases: [([UInt8], ImageInfo)] = [
            (Header.png(), ImageInfo(format: .png, width: 5, height: 4)),
            (Header.png(width: 0x7FFF_FFFF, height: 1), ImageInfo(format: .png, width: 0x7FFF_FFFF, height: 1)),
            (Header.jpeg(), ImageInfo(format: .jpeg, width: 5, height: 4)),
            (Header.jpeg(Header.sof(width: 0xFFFF, height: 0xFFFF, components: 1)), ImageInfo(format: .jpeg, width: 65535, height: 65535)),
            (Header.gif(), ImageInfo(format: .gif, width: 5, height: 4)),
            (Header.vp8(), ImageInfo(format: .webp, width: 5, height: 4)),
            (Header.vp8(width: 0xC000 | 16383, height: 0x4000 | 7), ImageInfo(format: .webp, width: 16383, height: 7)),
            (Header.vp8l(), ImageInfo(format: .webp, width: 5, height: 4)),
            (Header.vp8l(width: 16384, height: 16384), ImageInfo(format: .webp, width: 16384, height: 16384)),
            (Header.vp8x(), ImageInfo(format: .webp, width: 5, height: 4)),
            (Header.vp8x(width: 1 << 24, height: 255), ImageInfo(format: .webp, width: 1 << 24, height: 255)),
        ]
        for (bytes, expected) in cases {
            #expect(ImageInspector.inspect(bytes) == expected, "\(bytes)")
        }
        // Every frame header marker gives a size; C4 (DHT), C8 (JPG) and CC (DAC) are skipped like
        // any other segment, and the walk then stops at SOS.
        let frameMarkers: Set<UInt8> = [0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF]
        for marker in UInt8(0xC0)...0xCF {
            let info = ImageInspector.inspect(Header.jpeg(Header.sof(marker: marker)))
            #expect(
                info == (frameMarkers.contains(marker) ? ImageInfo(format: .jpeg, width: 5, height: 4) : nil),
                "marker \(marker)")
        }
    }

    struct Garbage: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var bytes: [UInt8]
        init(_ description: String, _ bytes: [UInt8]) {
            testDescription = description
            self.bytes = bytes
        }
    }

    static let garbage: [Garbage] = [
        Garbage("empty", []),
        Garbage("one byte", [0xFF]),
        Garbage("text", Array("<svg width=\"5\" height=\"4\"/>".utf8)),
        Garbage("PNG signature alone", Array(Header.png()[..<8])),
        Garbage("PNG with IDAT first", Header.png(type: "IDAT")),
        Garbage("PNG IHDR of length 12", Header.png(length: 12)),
        Garbage("PNG zero width", Header.png(width: 0)),
        Garbage("PNG zero height", Header.png(height: 0)),
        Garbage("PNG width of 2^31", Header.png(width: 0x8000_0000)),
        Garbage("PNG truecolour of depth 4", Header.png(depth: 4)),
        Garbage("PNG colour type 5", Header.png(colourType: 5)),
        Garbage("JPEG SOI alone", [0xFF, 0xD8]),
        Garbage("JPEG segment running past the end", [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x40] + Header.sof() + [0xFF, 0xD9]),
        // SOI (2 bytes) and APP0 (18) put the frame header at 20; its fields end at 29, its components at 39.
        Garbage("JPEG frame header cut inside its components", Array(Header.jpeg()[..<31])),
        Garbage("JPEG segment length 1", [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01] + Header.sof() + [0xFF, 0xD9]),
        Garbage("JPEG garbage between segments", [0xFF, 0xD8, 0x00] + Header.sof() + [0xFF, 0xD9]),
        Garbage("JPEG stuffed zero as a marker", [0xFF, 0xD8, 0xFF, 0x00] + Header.sof() + [0xFF, 0xD9]),
        Garbage("JPEG DHT as the first frame marker", Header.jpeg(Header.sof(marker: 0xC4))),
        Garbage("JPEG SOS before the frame header", Header.jpeg(Header.segment(0xDA, [1, 1, 0, 0, 0x3F, 0]) + Header.sof())),
        Garbage("JPEG EOI before the frame header", [0xFF, 0xD8, 0xFF, 0xD9] + Header.sof()),
        Garbage("JPEG frame header length not 8 + 3 per component", Header.jpeg(Header.sof(components: 3, extra: [0]))),
        Garbage("JPEG frame header of no component", Header.jpeg(Header.sof(components: 0))),
        Garbage("JPEG zero width", Header.jpeg(Header.sof(width: 0))),
        Garbage("JPEG zero height (DNL)", Header.jpeg(Header.sof(height: 0))),
        Garbage("GIF88a", Header.gif(version: "GIF88a")),
        Garbage("GIF without the whole screen descriptor", Array(Header.gif()[..<12])),
        Garbage("GIF zero width", Header.gif(width: 0)),
        Garbage("GIF zero height", Header.gif(height: 0)),
        Garbage("RIFF WAVE", Array("RIFF".utf8) + [36, 0, 0, 0] + Array("WAVEfmt ".utf8) + [16, 0, 0, 0, 1, 0, 1, 0]),
        Garbage("WebP starting with ALPH", Header.webp("ALPH", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        Garbage("WebP chunk larger than the RIFF", Header.webp("VP8 ", Header.vp8Payload(), riffSize: 4 + 8 + 9)),
        Garbage("WebP RIFF size under 12", Header.webp("VP8L", Header.vp8lPayload(), riffSize: 4)),
        Garbage("VP8 inter frame", Header.vp8(tag: 0x11 | 5 << 5)),
        Garbage("VP8 hidden frame", Header.vp8(tag: 5 << 5)),
        Garbage("VP8 version 4", Header.vp8(tag: 0x10 | 4 << 1 | 5 << 5)),
        Garbage("VP8 first partition past the chunk", Header.vp8(tag: 0x10 | 10 << 5)),
        Garbage("VP8 wrong start code", Header.webp("VP8 ", [0x50, 0, 0, 0x9D, 0x01, 0x2B, 5, 0, 4, 0])),
        Garbage("VP8 chunk under 10 bytes", Header.webp("VP8 ", Header.vp8Payload(), chunkSize: 9)),
        Garbage("VP8 zero width", Header.vp8(width: 0xC000)),
        Garbage("VP8 zero height", Header.vp8(height: 0x4000)),
        Garbage("VP8L wrong signature", Header.webp("VP8L", [0x2E] + Header.vp8lPayload().dropFirst())),
        Garbage("VP8L chunk under 5 bytes", Header.webp("VP8L", Header.vp8lPayload(), chunkSize: 4)),
        Garbage("VP8L version 1", Header.vp8l(version: 1)),
        Garbage("VP8X chunk of 12 bytes", Header.webp("VP8X", Header.vp8xPayload() + [0, 0])),
        Garbage("VP8X canvas over 2^32 - 1 pixels", Header.vp8x(width: 1 << 24, height: 256)),
    ]

    @Test("malformed input gives nil", arguments: garbage)
    func malformed(_ garbage: Garbage) {
        #expect(ImageInspector.inspect(garbage.bytes) == nil)
    }

    // MARK: - Random input

    /// The format whose signature `bytes` start with, if any.
    static func claimedFormat(_ bytes: [UInt8]) -> ImageFormat? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return .png }
        if bytes.starts(with: [0xFF, 0xD8]) { return .jpeg }
        if bytes.starts(with: Array("GIF8".utf8)) { return .gif }
        if bytes.starts(with: Array("RIFF".utf8)) { return .webp }
        return nil
    }

    /// Any answer to random or mutated bytes is of the format their signature claims, and positive.
    static func checkPlausible(_ bytes: [UInt8], _ context: @autoclosure () -> String) {
        guard let info = ImageInspector.inspect(bytes) else { return }
        #expect(info.format == claimedFormat(bytes), "\(context())")
        #expect(info.width > 0 && info.height > 0, "\(context())")
    }

    @Test("random bytes, bare or behind a signature, never crash or give a size from nowhere")
    func randomBytes() {
        var random = SplitMix64(seed: 0x5D6A_7E01)
        let signatures: [[UInt8]] = [
            [], Array(Header.png()[..<16]), [0xFF, 0xD8], [0xFF, 0xD8, 0xFF], Array("GIF89a".utf8),
            Array(Header.vp8()[..<16]), Array(Header.vp8l()[..<16]), Array(Header.vp8x()[..<16]),
        ]
        var answered = 0
        for signature in signatures {
            for _ in 0..<3000 {
                let tail = (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                let bytes = signature + tail
                Self.checkPlausible(bytes, "\(bytes)")
                if ImageInspector.inspect(bytes) != nil { answered += 1 }
                if signature.isEmpty, Self.claimedFormat(bytes) == nil {
                    #expect(ImageInspector.inspect(bytes) == nil, "\(bytes)")
                }
            }
        }
        // Behind a GIF signature most tails are a valid screen descriptor: the loop did reach the parsers.
        #expect(answered > 1000)
    }

    @Test("fixtures with a few bytes of their header changed never crash or change format", arguments: fixtureNames)
    func mutations(name: String) throws {
        let original = try Self.bytes(of: name)
        var random = SplitMix64(seed: UInt64(original.count))
        for _ in 0..<500 {
            var bytes = original
            for _ in 0...Int.random(in: 0...2, using: &random) {
                bytes[Int.random(in: 0..<min(64, bytes.count), using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            Self.checkPlausible(bytes, "\(name) mutated")
        }
    }

    // MARK: - Media types

    @Test(
        "media types of data URIs",
        arguments: [
            ("image/jpeg", ImageFormat.jpeg), ("image/jpg", .jpeg), ("IMAGE/JPEG", .jpeg), ("image/png", .png),
            ("Image/PNG; charset=binary", .png), (" image/webp ", .webp), ("image/webp;", .webp), ("image/gif", .gif),
            ("image/gif ;name=a.gif", .gif),
        ])
    func mediaType(_ mediaType: String, _ format: ImageFormat) {
        #expect(ImageInspector.format(ofMediaType: mediaType) == format)
    }

    @Test(
        "media types of other things",
        arguments: [
            "", "image/", "image", "image/svg+xml", "image/pngx", "image/jpe", "text/plain", "image /png", "png",
            "application/octet-stream", ";image/png",
        ])
    func otherMediaType(_ mediaType: String) {
        #expect(ImageInspector.format(ofMediaType: mediaType) == nil)
    }

    @Test("every format's own media type maps back to it")
    func ownMediaTypes() {
        for format in ImageFormat.allCases {
            #expect(ImageInspector.format(ofMediaType: format.mediaType) == format)
        }
    }
}

/// Minimal headers, valid with the defaults (each 5x4), so that a test can break one field at a time.
enum Header {
    static func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    static func be32(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(value >> $0 & 0xFF) } }
    static func le(_ value: Int, bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8(value >> ($0 * 8) & 0xFF) } }

    /// The signature and IHDR (its CRC left zero: the inspector does not check it).
    static func png(
        width: UInt32 = 5, height: UInt32 = 4, depth: UInt8 = 8, colourType: UInt8 = 2,
        length: UInt32 = 13, type: String = "IHDR"
    ) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + be32(length) + Array(type.utf8)
            + be32(width) + be32(height) + [depth, colourType, 0, 0, 0] + [0, 0, 0, 0]
    }

    static func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
        [0xFF, marker] + be16(payload.count + 2) + payload
    }

    static func sof(
        marker: UInt8 = 0xC0, width: Int = 5, height: Int = 4, components: UInt8 = 3, extra: [UInt8] = []
    ) -> [UInt8] {
        // Precision 8, then per component: identifier, sampling factors, quantization table.
        var payload: [UInt8] = [8]
        payload += be16(height) + be16(width) + [components]
        for component in 0..<components { payload += [component + 1, 0x11, 0] }
        return segment(marker, payload + extra)
    }

    /// SOI, a JFIF APP0, the given frame header, a DHT, SOS and EOI.
    static func jpeg(_ frame: [UInt8] = sof()) -> [UInt8] {
        [0xFF, 0xD8] + segment(0xE0, Array("JFIF\0".utf8) + [1, 1, 0, 0, 1, 0, 1, 0, 0]) + frame
            + segment(0xC4, [0x00] + [1] + Array(repeating: 0, count: 15) + [0])
            + segment(0xDA, [1, 1, 0, 0, 0x3F, 0]) + [0x00, 0xFF, 0xD9]
    }

    static func gif(version: String = "GIF89a", width: Int = 5, height: Int = 4) -> [UInt8] {
        Array(version.utf8) + le(width, bytes: 2) + le(height, bytes: 2) + [0, 0, 0] + Array(";".utf8)
    }

    static func webp(_ fourCC: String, _ payload: [UInt8], riffSize: Int? = nil, chunkSize: Int? = nil) -> [UInt8] {
        Array("RIFF".utf8) + le(riffSize ?? 4 + 8 + payload.count, bytes: 4) + Array("WEBP".utf8)
            + Array(fourCC.utf8) + le(chunkSize ?? payload.count, bytes: 4) + payload
    }

    /// Frame tag: key frame (bit 0 clear), version 0, shown (bit 4), first partition of 5 bytes.
    static func vp8Payload(width: Int = 5, height: Int = 4, tag: Int = 0x10 | 5 << 5) -> [UInt8] {
        le(tag, bytes: 3) + [0x9D, 0x01, 0x2A] + le(width, bytes: 2) + le(height, bytes: 2)
    }

    static func vp8(width: Int = 5, height: Int = 4, tag: Int = 0x10 | 5 << 5) -> [UInt8] {
        webp("VP8 ", vp8Payload(width: width, height: height, tag: tag))
    }

    static func vp8lPayload(width: Int = 5, height: Int = 4, version: Int = 0) -> [UInt8] {
        [0x2F] + le((width - 1) | (height - 1) << 14 | version << 29, bytes: 4)
    }

    static func vp8l(width: Int = 5, height: Int = 4, version: Int = 0) -> [UInt8] {
        webp("VP8L", vp8lPayload(width: width, height: height, version: version))
    }

    static func vp8xPayload(width: Int = 5, height: Int = 4) -> [UInt8] {
        [0x10, 0, 0, 0] + le(width - 1, bytes: 3) + le(height - 1, bytes: 3)
    }

    static func vp8x(width: Int = 5, height: Int = 4) -> [UInt8] {
        webp("VP8X", vp8xPayload(width: width, height: height))
    }
}

/// A seeded generator, so that the random inputs are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
