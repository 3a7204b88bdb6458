#if canImport(Glibc)
import Glibc
#endif

/// A moment of wall-clock time as the gateway stores it: whole milliseconds since 1970.
public struct WallInstant: InstantProtocol, Sendable {
    public let millisecondsSince1970: Int64

    public init(millisecondsSince1970: Int64) {
        self.millisecondsSince1970 = millisecondsSince1970
    }

    public func advanced(by duration: Duration) -> WallInstant {
        WallInstant(millisecondsSince1970: millisecondsSince1970 &+ duration.wholeMilliseconds)
    }

    public func duration(to other: WallInstant) -> Duration {
        .milliseconds(other.millisecondsSince1970 &- millisecondsSince1970)
    }

    public static func < (lhs: WallInstant, rhs: WallInstant) -> Bool { lhs.millisecondsSince1970 < rhs.millisecondsSince1970 }
}

/// The wall clock every part reads (job times, webhook schedules, hold expiry), as a Swift `Clock`:
/// the system's in the gateway, a manual one in tests.
public protocol WallClock: Clock, Sendable where Instant == WallInstant {}

/// The system's real-time clock.
public struct SystemWallClock: WallClock {
    public init() {}

    public var now: WallInstant {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return WallInstant(millisecondsSince1970: Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000)
    }

    public var minimumResolution: Duration { .milliseconds(1) }

    public func sleep(until deadline: WallInstant, tolerance: Duration? = nil) async throws {
        try await Task.sleep(for: now.duration(to: deadline))
    }
}

extension WallClock {
    /// Now, in whole milliseconds since 1970: the unit the ledger stores.
    public var millisecondsNow: Int64 { now.millisecondsSince1970 }
}
