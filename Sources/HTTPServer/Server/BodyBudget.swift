import CSystemShims
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The request body bytes all connections are receiving at once, against a fixed budget.
///
/// A body announced with `Content-Length` takes its whole length before its first byte is read
/// (its buffer is made that large); a chunked body takes its bytes as they come. Either gives them
/// back when its request goes to the responder or its connection closes.
///
/// After a burst the memory goes back to the system: the allocator keeps freed buffers of this
/// size in its heap for reuse (a large speed-up for image requests), so once the bodies in flight
/// have risen past `burst` and fallen to a quarter of it, the heap is trimmed (`malloc_trim`).
final class BodyBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)
    /// Set when the bodies in flight passed `burst`; the trim that follows clears it.
    private let burstSeen = Atomic<Bool>(false)
    private let burst: Int

    init(limit: Int, burst: Int = 64 << 20) {
        self.limit = max(0, limit)
        self.burst = burst
    }

    /// Takes `bytes` if they fit; false (and nothing taken) if they do not.
    func take(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        guard bytes <= limit else { return false }
        var current = used.load(ordering: .relaxed)
        while true {
            // `current <= limit` always holds, so neither side of the comparison can overflow.
            guard current <= limit - bytes else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged {
                if current + bytes >= burst { burstSeen.store(true, ordering: .relaxed) }
                return true
            }
            current = original
        }
    }

    func giveBack(_ bytes: Int) {
        guard bytes > 0 else { return }
        let remaining = used.subtract(bytes, ordering: .relaxed).newValue
        guard remaining <= burst / 4, burstSeen.exchange(false, ordering: .relaxed) else { return }
        // Off the event loop (trimming walks the whole heap), and twice: a body given back as its
        // connection closes is freed at once, one given to the responder when the request ends.
        for delay in [200, 2000] {
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(delay)) { Self.returnFreeMemory() }
        }
    }

    var inUse: Int { used.load(ordering: .relaxed) }

    static func returnFreeMemory() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}
