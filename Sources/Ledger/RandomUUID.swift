/// Random (version 4) UUIDs in lowercase: the ids of holds, jobs and webhook messages. Made from the
/// system's generator, one `getrandom(2)` per half; Foundation's `UUID()` opens, reads and closes
/// /dev/urandom each time.
enum RandomUUID {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        // RFC 9562 §5.4: the version (4) in the high nibble of byte 6, the variant (0b10) in the
        // high bits of byte 8.
        let high = (generator.next() as UInt64) & ~0xF000 | 0x4000
        let low = (generator.next() as UInt64) & ~(0xC000 << 48) | (0x8000 << 48)
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for nibble in 0..<32 {
            if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 { text.append(UInt8(ascii: "-")) }
            let half = nibble < 16 ? high : low
            text.append(digits[Int((half >> UInt64(60 - 4 * (nibble % 16))) & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
