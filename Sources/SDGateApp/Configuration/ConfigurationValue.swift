import Foundation
import GatewayAPI
import GenerationCore

/// What is wrong with one value, without saying where; the loader adds the file and line.
struct ConfigurationValueError: Error, Sendable {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Parses and renders the value forms a configuration file uses.
enum ConfigurationValue {
    /// Refuses a URL whose port is outside 1...65535, which the URL parser takes and the HTTP
    /// client's socket address traps on.
    static func checkPort(of url: URLComponents, in text: String) throws(ConfigurationValueError) {
        guard let port = url.port, !(1...65_535).contains(port) else { return }
        throw ConfigurationValueError("the port of '\(text)' must be 1 to 65535")
    }

    static func integer(_ text: String, in range: ClosedRange<Int>) throws(ConfigurationValueError) -> Int {
        guard let value = Int(text.trimmingSpaces()) else { throw ConfigurationValueError("expected a whole number, got '\(text)'") }
        return try check(value, range, render: String.init)
    }

    /// `1048576`, `64KiB`, `16MiB`, `1GiB` (also `KB`/`MB`/`GB`, taken as binary units).
    static func bytes(_ text: String, in range: ClosedRange<Int>) throws(ConfigurationValueError) -> Int {
        let text = text.trimmingSpaces()
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("B", 1),
        ]
        var number = Substring(text)
        var scale = 1
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Int(number.trimmingSpaces()), value >= 0, value <= Int.max / scale else {
            throw ConfigurationValueError("expected a size such as 1048576, 64KiB or 16MiB, got '\(text)'")
        }
        return try check(value * scale, range, render: renderBytes)
    }

    /// `250ms`, `10s`, `5m`, `1h`, `1.5s`; a bare number is seconds. Decimal digits only, with an
    /// optional fraction: `Double` would also read `0x10` (16), `1e3`, `inf` and `+5`.
    static func duration(_ text: String, in range: ClosedRange<Duration>) throws(ConfigurationValueError) -> Duration {
        let text = text.trimmingSpaces()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(text)
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        let digits = number.trimmingSpaces()
        guard Self.isDecimal(digits), let value = Double(digits), value.isFinite else {
            throw ConfigurationValueError("expected a duration such as 250ms, 10s or 5m, got '\(text)'")
        }
        // A duration past Int64's milliseconds lies past every range; it cannot even be built.
        guard let milliseconds = Int64(exactly: (value * scale * 1000).rounded()) else {
            throw outOfRange(range, got: "'\(text)'", render: renderDuration)
        }
        return try check(.milliseconds(milliseconds), range, render: renderDuration)
    }

    /// Digits, then optionally a point and more digits.
    private static func isDecimal(_ text: some StringProtocol) -> Bool {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { ("0"..."9").contains($0) } }
    }

    private static func check<T: Comparable>(_ value: T, _ range: ClosedRange<T>, render: (T) -> String) throws(ConfigurationValueError) -> T {
        guard range.contains(value) else { throw outOfRange(range, got: render(value), render: render) }
        return value
    }

    private static func outOfRange<T>(_ range: ClosedRange<T>, got: String, render: (T) -> String) -> ConfigurationValueError {
        ConfigurationValueError("must be between \(render(range.lowerBound)) and \(render(range.upperBound)), got \(got)")
    }

    static func renderBytes(_ bytes: Int) -> String {
        for (suffix, factor) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes >= factor && bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        return String(bytes)
    }

    static func renderDuration(_ duration: Duration) -> String {
        let milliseconds = duration.wholeMilliseconds
        if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
        let seconds = milliseconds / 1000
        if seconds >= 3600 && seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds >= 60 && seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
