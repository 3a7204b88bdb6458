/// The 64 characters of standard base64 (RFC 4648, §4), checked fast: the megabyte of text of an
/// image bound for an upstream is checked rather than decoded.
enum Base64Alphabet {
    /// Whether every byte is one of the 64 (padding is not). Written without branches or tables
    /// and not inlined, so that the compiler vectorises it: about four times the speed of decoding.
    @inline(never)
    static func holdsOnlyItsCharacters(_ characters: UnsafeBufferPointer<UInt8>) -> Bool {
        var outside: UInt8 = 0
        for character in characters {
            // Setting bit 0x20 turns A-Z into a-z and leaves a-z as they are.
            let letter: UInt8 = (character | 0x20) &- UInt8(ascii: "a") < 26 ? 1 : 0
            let digit: UInt8 = character &- UInt8(ascii: "0") < 10 ? 1 : 0
            let sign: UInt8 = (character == UInt8(ascii: "+") ? 1 : 0) | (character == UInt8(ascii: "/") ? 1 : 0)
            outside |= (letter | digit | sign) ^ 1
        }
        return outside == 0
    }
}
