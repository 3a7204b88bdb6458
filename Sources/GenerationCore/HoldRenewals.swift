import Synchronization

/// The holds of the generations still at work, renewed by one task for all of them.
///
/// A task of its own for each generation, asleep until its hold is due, would cost every request
/// the creation of a task and a timer, and the thread wake-ups that come with them, though almost
/// no generation outlives a renewal interval. Here a request costs a lock taken twice; the one
/// sweeping task sleeps until the earliest hold is due and ends when none is left.
final class HoldRenewals: Sendable {
    static let shared = HoldRenewals()

    struct Entry: Sendable {
        var due: ContinuousClock.Instant
        let interval: Duration
        /// Renews the hold; false when it is no longer open, and no renewal follows.
        let renew: @Sendable () async -> Bool
    }

    private struct State: ~Copyable {
        var entries: [UInt64: Entry] = [:]
        var nextID: UInt64 = 0
        /// The sweeping task, and when it wakes while it sleeps (nil while it renews).
        var sweeper: (task: Task<Void, Never>, generation: UInt64, wakesAt: ContinuousClock.Instant?)?
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Renews a hold every `interval` until `remove` is called with the returned id.
    func add(every interval: Duration, _ renew: @escaping @Sendable () async -> Bool) -> UInt64 {
        let due = ContinuousClock.now + interval
        return state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.entries[id] = Entry(due: due, interval: interval, renew: renew)
            switch state.sweeper {
            case .none:
                startSweeper(&state)
            case .some(let sweeper):
                // A sweeper asleep past this hold's due time is replaced; one at work looks at
                // every entry again before it sleeps.
                if let wakesAt = sweeper.wakesAt, wakesAt > due {
                    sweeper.task.cancel()
                    startSweeper(&state)
                }
            }
            return id
        }
    }

    /// When the sweeper wakes next; nil while none sleeps.
    var sweeperWakesAt: ContinuousClock.Instant? {
        state.withLock { $0.sweeper?.wakesAt }
    }

    func remove(_ id: UInt64) {
        _ = state.withLock { state in state.entries.removeValue(forKey: id) }
    }

    private func startSweeper(_ state: inout State) {
        state.generation += 1
        let generation = state.generation
        state.sweeper = (Task { await self.sweep(generation) }, generation, nil)
    }

    private func sweep(_ generation: UInt64) async {
        while true {
            let wake: ContinuousClock.Instant? = state.withLock { state in
                guard state.sweeper?.generation == generation else { return nil }
                guard let earliest = state.entries.values.map(\.due).min() else {
                    state.sweeper = nil
                    return nil
                }
                state.sweeper?.wakesAt = earliest
                return earliest
            }
            guard let wake else { return }
            try? await Task.sleep(until: wake, clock: .continuous)
            // Replaced while asleep: the new sweeper renews. Once this one has taken the due
            // entries it is at work, and is not replaced before it sleeps again.
            let taken: [(UInt64, Entry)]? = state.withLock { state in
                guard state.sweeper?.generation == generation else { return nil }
                state.sweeper?.wakesAt = nil
                let now = ContinuousClock.now
                var due: [(UInt64, Entry)] = []
                for (id, entry) in state.entries where entry.due <= now {
                    state.entries[id]?.due = now + entry.interval
                    due.append((id, entry))
                }
                return due
            }
            guard let due = taken else { return }
            await withTaskGroup(of: Void.self) { group in
                for (id, entry) in due {
                    group.addTask {
                        if await !entry.renew() { self.remove(id) }
                    }
                }
            }
        }
    }
}
