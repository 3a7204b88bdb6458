/// An amount of credits, held as whole micro-credits (1 credit = 1,000,000): money is never a
/// floating-point number.
public struct Credits: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var microCredits: Int64

    public init(microCredits: Int64) {
        self.microCredits = microCredits
    }

    public static let zero = Credits(microCredits: 0)

    /// The largest amount an account may hold, and so the largest amount that may be moved at once:
    /// a million million credits. Every amount from outside is checked against it, so sums of two
    /// of them (a balance and a top-up, a balance and a hold) stay far inside 64 bits.
    public static let maximum = Credits(microCredits: 1_000_000_000_000 * 1_000_000)

    /// Parses a decimal amount (`0.004`, `12`, `-1.5`) exactly, without going through a Double;
    /// nil for anything else, more than six decimals, or a magnitude above `maximum`.
    public init?(decimal text: some StringProtocol) {
        var text = Substring(text)
        let negative = text.hasPrefix("-")
        if negative { text = text.dropFirst() }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        // ASCII digits only (Int64 alone would take a second sign), and no more whole credits than
        // the maximum holds, checked before the arithmetic.
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.allSatisfy({ $0.allSatisfy(\.isASCIIDigit) }),
            parts[0].count <= 13, let whole = Int64(parts[0]), whole <= Self.maximum.microCredits / 1_000_000
        else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= 6, let micro = Int64(fraction.padding(toLength: 6)) else { return nil }
        let magnitude = whole * 1_000_000 + micro
        guard magnitude <= Self.maximum.microCredits else { return nil }
        microCredits = negative ? -magnitude : magnitude
    }

    /// A decimal string with the trailing zeros dropped: `0.004`, `12`, `-1.5`.
    public var description: String { Self.description(microCredits: Int128(microCredits)) }

    /// The same for an amount that may pass what `Credits` holds, such as a sum of many.
    public static func description(microCredits: Int128) -> String {
        let sign = microCredits < 0 ? "-" : ""
        let magnitude = microCredits.magnitude
        let whole = magnitude / 1_000_000, fraction = magnitude % 1_000_000
        guard fraction > 0 else { return "\(sign)\(whole)" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 6 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(sign)\(whole).\(digits)"
    }

    public static func < (lhs: Credits, rhs: Credits) -> Bool { lhs.microCredits < rhs.microCredits }
    public static func + (lhs: Credits, rhs: Credits) -> Credits { Credits(microCredits: lhs.microCredits + rhs.microCredits) }
    public static func - (lhs: Credits, rhs: Credits) -> Credits { Credits(microCredits: lhs.microCredits - rhs.microCredits) }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension Substring {
    fileprivate func padding(toLength length: Int) -> String {
        String(self) + String(repeating: "0", count: Swift.max(0, length - count))
    }
}

extension Credits {
    /// For metrics only, which are approximate by nature; amounts that move money stay integers.
    public var asDouble: Double { Double(microCredits) / 1_000_000 }
}
