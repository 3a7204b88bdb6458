import CByteChecks

/// The 64 characters of standard base64 (RFC 4648, §4), checked fast: the megabyte of text of an
/// image bound for an upstream is checked rather than decoded.
package enum Base64Alphabet {
    /// How many of the first bytes are of the 64 (padding is not). Vectorised, with AVX2 where the
    /// processor has it.
    package static func leadingRun(_ characters: UnsafeBufferPointer<UInt8>) -> Int {
        guard let start = characters.baseAddress else { return 0 }
        return cbytes_base64_alphabet_run(start, characters.count)
    }

    /// Whether every byte is one of the 64.
    package static func holdsOnlyItsCharacters(_ characters: UnsafeBufferPointer<UInt8>) -> Bool {
        leadingRun(characters) == characters.count
    }
}
