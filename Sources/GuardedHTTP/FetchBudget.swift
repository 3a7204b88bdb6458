import Synchronization

/// The bytes that fetches in flight have received, at most `limit` for all of them together. A
/// member's image URL may answer slowly, holding what it has sent until the fetch's deadline, and
/// many at once held gigabytes before a single credit was asked for.
public final class FetchBudget: Sendable {
    public let limit: Int
    private let used = Mutex(0)

    public init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Takes `bytes` if they fit; false (and nothing taken) if they do not.
    func take(_ bytes: Int) -> Bool {
        used.withLock { used in
            // `used <= limit` always holds: the subtraction cannot overflow.
            guard bytes <= limit - used else { return false }
            used += bytes
            return true
        }
    }

    func giveBack(_ bytes: Int) {
        used.withLock { $0 -= bytes }
    }

    public var inUse: Int { used.withLock { $0 } }
}
