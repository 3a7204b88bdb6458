/// An amount of credits, held as whole micro-credits (1 credit = 1,000,000): money is never a
/// floating-point number.
public struct Credits: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var microCredits: Int64

    public init(microCredits: Int64) {
        self.microCredits = microCredits
    }

    public static let zero = Credits(microCredits: 0)

    /// Parses a decimal amount (`0.004`, `12`, `-1.5`) exactly, without going through a Double;
    /// nil for anything else or more than six decimals.
    public init?(decimal text: some StringProtocol) {
        var text = Substring(text)
        let negative = text.hasPrefix("-")
        if negative { text = text.dropFirst() }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let whole = Int64(parts[0]), whole >= 0, !parts[0].contains("+") else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= 6, fraction.allSatisfy(\.isASCII), fraction.allSatisfy(\.isNumber) else { return nil }
        let micro = Int64(fraction.padding(toLength: 6)) ?? 0
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: 1_000_000)
        guard !overflow else { return nil }
        microCredits = (scaled + micro) * (negative ? -1 : 1)
    }

    /// A decimal string with the trailing zeros dropped: `0.004`, `12`, `-1.5`.
    public var description: String {
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

extension Substring {
    fileprivate func padding(toLength length: Int) -> String {
        String(self) + String(repeating: "0", count: Swift.max(0, length - count))
    }
}
