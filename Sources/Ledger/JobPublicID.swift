/// A job's public number, besides its UUID: APIs such as ModelsLab's answer with an integer `id`,
/// and their clients' typed models read it as one.
///
/// Random, so that it says nothing of how many jobs the gateway runs, and at most 2^53 − 1 so that
/// JSON parsers that read every number as a double keep it exact.
public enum JobPublicID {
    public static let range: ClosedRange<Int64> = 1...((1 << 53) - 1)
    /// How many numbers an enqueue tries before it gives up: one in practice; another only when one
    /// meets a job that has it already, one chance in billions per job kept.
    static let draws = 8

    /// Where the stores take new numbers from: random, unless a test makes them meet, which chance
    /// alone never shows. (Read before a store's closure: SQLite's may run on another thread.)
    @TaskLocal static var source: @Sendable () -> Int64 = random

    static func random() -> Int64 {
        var generator = SystemRandomNumberGenerator()
        return Int64.random(in: range, using: &generator)
    }

    /// The public id `text` spells in decimal, or nil when it is not one: 1 to 16 ASCII digits
    /// within `range`. Checked before parsing, so that no text is too long or strange to parse.
    public static func parse(_ text: String) -> Int64? {
        let digits = text.utf8
        guard (1...16).contains(digits.count), digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let value = Int64(text), range.contains(value)
        else { return nil }
        return value
    }
}
