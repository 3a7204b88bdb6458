extension Duration {
    /// Whole milliseconds (truncated), as timestamps, deadlines and usage events count them.
    public var wholeMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
    /// Whole nanoseconds (truncated), as metrics' timers take them.
    public var wholeNanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
    /// Seconds with their fraction, as answers report times.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// Whole seconds, rounded up and at least one, as `Retry-After` says them.
    public var wholeSecondsRoundedUp: Int64 { max(1, components.seconds + (components.attoseconds > 0 ? 1 : 0)) }

    /// A time another program reported in seconds (an upstream's generation time, a worker's),
    /// kept only if it is plausible, from zero to a day: a number from outside may be negative,
    /// infinite or past what 64-bit milliseconds hold.
    public static func reported(seconds: Double) -> Duration? {
        guard seconds.isFinite, (0...86_400).contains(seconds) else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }
}
