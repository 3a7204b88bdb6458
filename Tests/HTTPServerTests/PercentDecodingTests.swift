import Testing

@testable import HTTPServer

/// Path segments, queries and form bodies are decoded byte by byte, in one pass.
@Suite("Percent-decoding")
struct PercentDecodingTests {
    @Test func escapesAndPlusesAreDecodedAsTheirPlaceReadsThem() {
        #expect(PercentDecoding.decode("a+b%20c%2Bd".utf8, plusIsSpace: true) == "a b c+d")
        #expect(PercentDecoding.decode("a+b%20c".utf8, plusIsSpace: false) == "a+b c", "a path's + is a +")
        #expect(PercentDecoding.decode("caf%C3%A9%e2%82%ac".utf8, plusIsSpace: true) == "café€", "UTF-8, either case of hex")
        #expect(PercentDecoding.decode("".utf8, plusIsSpace: true) == "")
        #expect(PercentDecoding.decode(String(repeating: "+", count: 1 << 20).utf8, plusIsSpace: true) == String(repeating: " ", count: 1 << 20))
    }

    @Test func aMalformedEscapeOrTextThatIsNotUTF8IsRefused() {
        for malformed in ["%", "%4", "a%G1", "%%41", "%C3", "%FF", "%C3%28"] {
            #expect(PercentDecoding.decode(malformed.utf8, plusIsSpace: true) == nil, "\(malformed)")
        }
        #expect(PercentDecoding.decode([0x61, 0xFF], plusIsSpace: true) == nil, "a raw byte that is not UTF-8")
    }

    /// A form's parts are slices of its body, decoded in place; a collection without contiguous
    /// bytes is decoded from a copy, to the same text.
    @Test func slicesAndCollectionsOfAnyShapeDecodeAlike() {
        let body = Array("name=a+b%21&x=%".utf8)
        #expect(PercentDecoding.decode(body[5..<11], plusIsSpace: true) == "a b!")
        #expect(PercentDecoding.decode(body[14...], plusIsSpace: true) == nil, "an escape cut by the slice's end")
        #expect(PercentDecoding.decode("12%+a".utf8.reversed(), plusIsSpace: true) == "a !", "a+%21, read backwards")
        #expect(PercentDecoding.decode("caf%C3%A9"[...].utf8, plusIsSpace: false) == "café")
    }
}
