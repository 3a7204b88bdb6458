import Foundation
import Testing
@testable import GatewayAPI

@Suite("Base64 image input")
struct Base64Tests {
    static let bytes: [UInt8] = Array(0...255) + Array(repeating: 0xFB, count: 7)
    static var canonical: String { Data(bytes).base64EncodedString() }

    /// Every form decodes to the same bytes, and is kept as the same standard base64 text (what
    /// an upstream is sent).
    @Test func canonicalWrappedUrlSafeAndUnpaddedFormsDecodeAlike() {
        let wrapped = Data(Self.bytes).base64EncodedString(options: [.lineLength64Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        let urlSafe = Self.canonical.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let unpadded = Self.canonical.trimmingCharacters(in: CharacterSet(charactersIn: "="))
        #expect(Self.canonical.contains("+") && Self.canonical.contains("/") && Self.canonical.hasSuffix("="), "the sample exercises every case")
        for text in [Self.canonical, wrapped, urlSafe, unpadded, " \(Self.canonical)\n"] {
            let decoded = ImageLoader.base64(Substring(text))
            #expect(decoded?.0 == Self.bytes, "\(text.prefix(20))")
            #expect(decoded.map { String($0.base64) } == Self.canonical, "\(text.prefix(20))")
        }
    }

    @Test(arguments: ["", "=", "a", "abcde", "ab$d", "not base64 at all!", "YWJj\u{00e9}"])
    func invalidBase64IsRefused(text: String) {
        #expect(ImageLoader.base64(Substring(text)) == nil)
    }
}
