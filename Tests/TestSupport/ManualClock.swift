import Synchronization

/// A clock the tests move by hand, in milliseconds since 1970 (a ledger `Timestamp`): expiries and
/// retries are tested without waiting.
public final class ManualClock: Sendable {
    private let milliseconds = Atomic<Int64>(1_800_000_000_000)

    public init() {}

    public var now: Int64 { milliseconds.load(ordering: .relaxed) }

    public func advance(by delta: Int64) { milliseconds.add(delta, ordering: .relaxed) }
}
