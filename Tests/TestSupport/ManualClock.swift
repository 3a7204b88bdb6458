import Synchronization

/// A clock the tests move by hand, in milliseconds since 1970 (a ledger `Timestamp`): expiries and
/// retries are tested without waiting.
package final class ManualClock: Sendable {
    private let milliseconds = Atomic<Int64>(1_800_000_000_000)

    package init() {}

    package var now: Int64 { milliseconds.load(ordering: .relaxed) }

    package func advance(by delta: Int64) { milliseconds.add(delta, ordering: .relaxed) }
}
