import Foundation
import GenerationCore
import Testing

@testable import GatewayAPI

@Suite("Base64 image input")
struct Base64Tests {
    static let short: [UInt8] = Array(0...255) + Array(repeating: 0xFB, count: 7)
    /// Longer than the head that is decoded at once, ending in a padded quad.
    static let long: [UInt8] = (0..<(CheckedBase64.headQuads * 3 + 10_000)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }

    static func forms(of bytes: [UInt8]) -> [String] {
        let canonical = Data(bytes).base64EncodedString()
        let wrapped = Data(bytes).base64EncodedString(options: [.lineLength64Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        let urlSafe = canonical.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let unpadded = canonical.trimmingCharacters(in: CharacterSet(charactersIn: "="))
        return [canonical, wrapped, urlSafe, unpadded, " \(canonical)\n"]
    }

    /// Every form decodes to the same bytes, and is kept as the same standard base64 text (what
    /// an upstream is sent). Long text is decoded only as far as its head, and counted exactly.
    @Test(arguments: [short, long])
    func canonicalWrappedUrlSafeAndUnpaddedFormsDecodeAlike(bytes: [UInt8]) {
        let canonical = Data(bytes).base64EncodedString()
        #expect(canonical.contains("+") && canonical.contains("/") && canonical.hasSuffix("="), "the sample exercises every case")
        for text in Self.forms(of: bytes) {
            let checked = ImageLoader.base64(ArraySlice(text.utf8))
            #expect(checked?.count == bytes.count, "\(text.prefix(20))")
            #expect(checked?.whole() == bytes, "\(text.prefix(20))")
            #expect(checked?.head == Array(bytes.prefix(checked?.head.count ?? 0)))
            #expect(checked?.text.description == canonical, "\(text.prefix(20))")
        }
        let checked = ImageLoader.base64(ArraySlice(canonical.utf8))
        #expect(checked?.isWhole == (bytes.count < CheckedBase64.headQuads * 3))
    }

    @Test(arguments: ["", "=", "a", "abcde", "ab$d", "not base64 at all!", "YWJj\u{00e9}"])
    func invalidBase64IsRefused(text: String) {
        #expect(ImageLoader.base64(ArraySlice(text.utf8)) == nil)
    }

    /// Long text that is not base64 past its head, or in its last quad, is refused as surely as
    /// short text: the part that is only checked holds nothing but the alphabet.
    @Test(arguments: [("$", 0.5), ("=", 0.5), ("*", 0.9), ("=", 0.99), ("A===", 1.0)])
    func longTextThatIsNotBase64PastItsHeadIsRefused(intruder: String, at fraction: Double) {
        var text = Array(Data(Self.long).base64EncodedString())
        if fraction == 1.0 {
            text.replaceSubrange((text.count - 4)..., with: intruder)
        } else {
            text[Int(Double(text.count) * fraction)] = Character(intruder)
        }
        #expect(ImageLoader.base64(ArraySlice(String(text).utf8)) == nil)
    }

    /// Padding that closes the decoded head's last quad: the head decodes on its own and the rest
    /// is of the alphabet, yet the whole text is not base64 (it once passed, and the request went
    /// on with an image that decoded to nothing).
    @Test(arguments: [1, 2])
    func paddingAtTheEndOfTheHeadIsRefused(padding: Int) {
        let head = Data(Self.long.prefix(CheckedBase64.headQuads * 3 - padding)).base64EncodedString()
        #expect(head.utf8.count == CheckedBase64.headQuads * 4 && head.hasSuffix(String(repeating: "=", count: padding)))
        let text = head + Data(Self.long).base64EncodedString()
        #expect(ImageLoader.base64(ArraySlice(text.utf8))?.count == nil)
    }

    /// Long base64 as the body's reader lifts it out of a request: what the reader saw of the
    /// alphabet is not checked again, and anything past that still is. An intruder anywhere in the
    /// middle is refused, and the valid text is accepted whole.
    @Test(arguments: [nil, "$", "=", "*"])
    func longTextLiftedByTheBodysReaderIsCheckedPastWhatTheReaderSaw(intruder: Character?) async {
        var text = Array(Data(Self.long).base64EncodedString())
        if let intruder { text[text.count / 2] = intruder }
        let body = Array(#"{"image":"\#(String(text))"}"#.utf8)
        guard case .ascii(let lifted)? = try? JSONObjectReader.decode(body)["image"] else {
            Issue.record("the image was not lifted")
            return
        }
        let checked = ImageLoader.base64(lifted.bytes, knownRun: lifted.base64Run)
        #expect(checked?.whole() == (intruder == nil ? Self.long : nil))
        // Checked without the reader's run, the text fares the same.
        #expect(ImageLoader.base64(lifted.bytes)?.whole() == checked?.whole())
    }

    /// A JPEG whose metadata runs past the head but not past 48 KiB: its frame header is found in
    /// the longer head.
    @Test func aHeaderPastTheShortHeadIsFoundInTheLongerOne() async throws {
        let metadata = (0..<20_000).map { UInt8(truncatingIfNeeded: $0) }
        func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
            [0xFF, marker, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload
        }
        let jpeg =
            [0xFF, 0xD8] + segment(0xE1, metadata) + segment(0xC0, [8, 0x01, 0x2C, 0x00, 0xC8, 1, 1, 0x11, 0])
            + [0xFF, 0xDA] + Array(repeating: 0x55, count: 200_000) + [0xFF, 0xD9]
        let image = try await ImageLoader(fetcher: nil).load(.string(Data(jpeg).base64EncodedString()), maxSize: ImageSize(width: 1024, height: 1024))
        #expect(image.info.width == 200 && image.info.height == 300)
        #expect(image.bytes == jpeg)
        // The longer head alone finds it: past 48 KiB the same text holds what no decoder takes.
        var spoiled = Array(Data(jpeg).base64EncodedString().utf8)
        for index in (spoiled.count / 2)..<spoiled.count { spoiled[index] = UInt8(ascii: "*") }
        let head = try #require(Data(base64Encoded: Data(spoiled[..<(CheckedBase64.headQuads * 4)]))).map { $0 }
        let checked = CheckedBase64(text: ASCIIText(unchecked: spoiled[...]), head: head, count: jpeg.count)
        #expect(checked.whole().isEmpty)
        #expect(checked.imageInfo().map { [$0.width, $0.height] } == [200, 300])
    }

    /// A JPEG whose metadata runs past the decoded head: its frame header is found in the whole
    /// image, and the image keeps every byte.
    @Test func aHeaderPastTheHeadIsFoundInTheWholeImage() async throws {
        let metadata = (0..<60_000).map { UInt8(truncatingIfNeeded: $0) }
        func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
            [0xFF, marker, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload
        }
        // SOF0: precision 8, 300 lines of 200 samples, one component.
        let jpeg =
            [0xFF, 0xD8] + segment(0xE1, metadata) + segment(0xE2, metadata) + segment(0xC0, [8, 0x01, 0x2C, 0x00, 0xC8, 1, 1, 0x11, 0])
            + [0xFF, 0xD9]
        let image = try await ImageLoader(fetcher: nil).load(.string(Data(jpeg).base64EncodedString()), maxSize: ImageSize(width: 1024, height: 1024))
        #expect(image.info.width == 200 && image.info.height == 300)
        #expect(image.bytes == jpeg)
    }
}
