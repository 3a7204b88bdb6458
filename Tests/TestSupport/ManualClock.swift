package import GenerationCore
import Synchronization

/// A wall clock the tests move by hand: expiries and retries are tested without waiting.
package final class ManualClock: WallClock {
    private let milliseconds = Atomic<Int64>(1_800_000_000_000)

    package init() {}

    package var now: WallInstant { WallInstant(millisecondsSince1970: milliseconds.load(ordering: .relaxed)) }

    package var minimumResolution: Duration { .milliseconds(1) }

    /// Returns once the clock has been moved past `deadline` (or at once if it is past already),
    /// looking again every millisecond of real time.
    package func sleep(until deadline: WallInstant, tolerance: Duration? = nil) async throws {
        while now < deadline { try await Task.sleep(for: .milliseconds(1)) }
    }

    /// Moves the clock on by `delta` milliseconds.
    package func advance(by delta: Int64) { milliseconds.add(delta, ordering: .relaxed) }
}
