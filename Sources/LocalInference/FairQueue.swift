/// Requests waiting for a worker, fair across keys: the next served is the waiting key that was
/// served least recently (never served: first), so a burst from one key delays another key's
/// request by at most the job already running. Bounded per key and in all, so a queue never grows
/// without limit.
struct FairQueue<Element> {
    let capacity: Int
    let capacityPerKey: Int
    private(set) var count = 0
    /// Each key's waiting elements, oldest first.
    private var waiting: [String: [(id: UInt64, element: Element)]] = [:]
    /// The keys with waiting elements, in the order they started waiting.
    private var turns: [String] = []

    init(capacity: Int, capacityPerKey: Int) {
        self.capacity = capacity
        self.capacityPerKey = capacityPerKey
    }

    var isEmpty: Bool { count == 0 }

    /// Adds an element for `key`; false when the queue, or the key's share of it, is full.
    mutating func enqueue(_ element: Element, id: UInt64, key: String) -> Bool {
        guard count < capacity, waiting[key, default: []].count < capacityPerKey else { return false }
        if waiting[key, default: []].isEmpty { turns.append(key) }
        waiting[key, default: []].append((id, element))
        count += 1
        return true
    }

    /// The oldest element of the waiting key served least recently, by `lastServed` (a number
    /// that grows with every request started; absent: never served).
    mutating func dequeue(lastServed: [String: UInt64]) -> (key: String, element: Element)? {
        guard let turn = turns.indices.min(by: { lastServed[turns[$0], default: 0] < lastServed[turns[$1], default: 0] }) else { return nil }
        let key = turns.remove(at: turn)
        let (_, element) = waiting[key]!.removeFirst()
        if waiting[key]!.isEmpty { waiting[key] = nil } else { turns.append(key) }
        count -= 1
        return (key, element)
    }

    /// Takes an element out wherever it waits (its request was cancelled).
    mutating func remove(id: UInt64) -> Element? {
        for (key, elements) in waiting {
            guard let index = elements.firstIndex(where: { $0.id == id }) else { continue }
            let element = waiting[key]!.remove(at: index).element
            if waiting[key]!.isEmpty {
                waiting[key] = nil
                turns.removeAll { $0 == key }
            }
            count -= 1
            return element
        }
        return nil
    }
}
