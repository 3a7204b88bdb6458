/// UUIDs in lowercase, made from the system's generator (one `getrandom(2)` per 64 bits; Foundation's
/// `UUID()` opens, reads and closes /dev/urandom each time).
enum RandomUUID {
    /// Random (version 4): the ids of jobs and webhook messages.
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        // RFC 9562 §5.4: the version (4) in the high nibble of byte 6, the variant (0b10) in the
        // high bits of byte 8.
        return text(high: (generator.next() as UInt64) & ~0xF000 | 0x4000, low: randomLow(&generator))
    }

    /// Time-ordered (version 7, RFC 9562 §5.7): the milliseconds since 1970 in the first 48 bits,
    /// then 74 random ones. The ids of holds, a row each on the hot path: made one after another,
    /// they sort nearly in order, so their index grows at its last page, which stays in the cache,
    /// instead of at a random page that is read first (a year of holds is a large index).
    static func timeOrdered(milliseconds: Int64) -> String {
        var generator = SystemRandomNumberGenerator()
        let time = UInt64(clamping: max(0, milliseconds)) & 0xFFFF_FFFF_FFFF
        return text(high: time << 16 | 0x7000 | (generator.next() as UInt64) & 0x0FFF, low: randomLow(&generator))
    }

    /// 64 random bits with the RFC variant (0b10) in the top two.
    private static func randomLow(_ generator: inout SystemRandomNumberGenerator) -> UInt64 {
        (generator.next() as UInt64) & ~(0xC000 << 48) | (0x8000 << 48)
    }

    private static func text(high: UInt64, low: UInt64) -> String {
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
