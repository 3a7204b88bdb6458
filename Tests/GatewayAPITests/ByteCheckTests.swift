import CByteChecks
import GenerationCore
import Testing

@testable import GatewayAPI

/// The vectorised checks agree with their definitions for every byte value, wherever it lies: in
/// the 128- and 32-byte blocks the vector paths read and in the tail they leave to the byte loop.
@Suite("Vectorised byte checks")
struct ByteCheckTests {
    static let alphabet = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8))

    @Test(arguments: [0, 5, 31, 32, 63, 64 + 17, 99, 127, 128, 200, 255, 256 + 43])
    func everyByteValueIsClassifiedAtEveryPosition(position: Int) {
        for value in UInt8.min...UInt8.max {
            var text = [UInt8](repeating: UInt8(ascii: "Q"), count: 300)
            text[position] = value
            let inAlphabet = text.withUnsafeBufferPointer { Base64Alphabet.holdsOnlyItsCharacters($0) }
            #expect(inAlphabet == Self.alphabet.contains(value), "byte \(value) at \(position)")
            // The run of alphabet characters ends at this byte, or runs to the end.
            let run = text.withUnsafeBufferPointer { Base64Alphabet.leadingRun($0) }
            #expect(run == (Self.alphabet.contains(value) ? text.count : position), "byte \(value) at \(position)")
            // The first special byte of a JSON string: this one, or none (the whole length).
            var nonASCII = false
            let special = text.withUnsafeBufferPointer { cbytes_json_string_special($0.baseAddress, $0.count, &nonASCII) }
            let isSpecial = value == UInt8(ascii: "\"") || value == UInt8(ascii: "\\") || value < 0x20
            #expect(special == (isSpecial ? position : text.count), "byte \(value) at \(position)")
            #expect(nonASCII == (value >= 0x80), "byte \(value) at \(position)")
        }
    }

    @Test func theFirstOfSeveralSpecialBytesIsFound() {
        var text = [UInt8](repeating: UInt8(ascii: "a"), count: 200)
        text[150] = UInt8(ascii: "\"")
        text[70] = UInt8(ascii: "\\")
        text[40] = 0x0A
        var nonASCII = false
        #expect(text.withUnsafeBufferPointer { cbytes_json_string_special($0.baseAddress, $0.count, &nonASCII) } == 40)
        #expect(!nonASCII)
    }

    /// A string's end is found after a non-ASCII byte; one after the end is not the string's.
    @Test(arguments: [3, 31, 32, 33, 95, 130])
    func onlyBytesBeforeTheSpecialOneCountAsNonASCII(special: Int) {
        for offset in [-1, 1] {
            var text = [UInt8](repeating: UInt8(ascii: "a"), count: 200)
            text[special] = UInt8(ascii: "\"")
            text[special + offset] = 0xC3
            var nonASCII = false
            let found = text.withUnsafeBufferPointer { cbytes_json_string_special($0.baseAddress, $0.count, &nonASCII) }
            #expect(found == special)
            #expect(nonASCII == (offset < 0), "0xC3 at \(special + offset), quote at \(special)")
        }
    }

    /// The run ends at the first byte outside the alphabet, whichever block it lies in.
    @Test func theRunEndsAtTheFirstOfSeveralBytesOutside() {
        var text = [UInt8](repeating: UInt8(ascii: "z"), count: 200)
        text[150] = UInt8(ascii: "=")
        text[70] = UInt8(ascii: "\"")
        text[40] = UInt8(ascii: "-")
        #expect(text.withUnsafeBufferPointer { Base64Alphabet.leadingRun($0) } == 40)
    }

    @Test func emptyTextHoldsNothingOutside() {
        #expect([UInt8]().withUnsafeBufferPointer { Base64Alphabet.holdsOnlyItsCharacters($0) })
        #expect([UInt8]().withUnsafeBufferPointer { Base64Alphabet.leadingRun($0) } == 0)
        var nonASCII = false
        #expect([UInt8]().withUnsafeBufferPointer { cbytes_json_string_special($0.baseAddress, $0.count, &nonASCII) } == 0)
        #expect(!nonASCII)
    }
}
