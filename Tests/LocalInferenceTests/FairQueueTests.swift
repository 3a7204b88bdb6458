import Testing

@testable import LocalInference

@Suite("Fair queue")
struct FairQueueTests {
    @Test func theKeyServedLeastRecentlyGoesFirst() {
        var queue = FairQueue<String>(capacity: 10, capacityPerKey: 3)
        for index in 1...3 { _ = queue.enqueue("a\(index)", id: UInt64(index), key: "a") }
        _ = queue.enqueue("b1", id: 10, key: "b")
        // a was served (its first request runs): b, never served, goes first although it came last.
        let first = queue.dequeue(lastServed: ["a": 1]), second = queue.dequeue(lastServed: ["a": 1, "b": 2]),
            third = queue.dequeue(lastServed: ["a": 3, "b": 2])
        #expect([first?.element, second?.element, third?.element] == ["b1", "a1", "a2"])
        #expect(queue.count == 1)
    }

    @Test func equalKeysTakeTurns() {
        var queue = FairQueue<String>(capacity: 10, capacityPerKey: 5)
        for (index, element) in ["a1", "a2", "a3", "b1", "b2", "c1"].enumerated() {
            _ = queue.enqueue(element, id: UInt64(index), key: String(element.first!))
        }
        var order: [String] = []
        while let (_, element) = queue.dequeue(lastServed: [:]) { order.append(element) }
        #expect(order == ["a1", "b1", "c1", "a2", "b2", "a3"])
    }

    @Test func aFullQueueOrAFullShareRefuses() {
        var queue = FairQueue<Int>(capacity: 3, capacityPerKey: 2)
        let accepted = [
            queue.enqueue(1, id: 1, key: "a"), queue.enqueue(2, id: 2, key: "a"), queue.enqueue(3, id: 3, key: "a"),
            queue.enqueue(4, id: 4, key: "b"), queue.enqueue(5, id: 5, key: "c"),
        ]
        // a's third goes beyond its share; c's first beyond the whole queue.
        #expect(accepted == [true, true, false, true, false])
    }

    @Test func aCancelledRequestLeavesTheQueue() {
        var queue = FairQueue<Int>(capacity: 5, capacityPerKey: 5)
        _ = queue.enqueue(1, id: 1, key: "a")
        _ = queue.enqueue(2, id: 2, key: "b")
        let removed = queue.remove(id: 1), again = queue.remove(id: 1), next = queue.dequeue(lastServed: [:])
        #expect(removed == 1 && again == nil && next?.key == "b")
        #expect(queue.isEmpty)
    }
}
