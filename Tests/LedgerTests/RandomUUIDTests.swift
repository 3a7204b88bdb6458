import Foundation
import Testing

@testable import Ledger

@Suite("Random UUIDs")
struct RandomUUIDTests {
    /// Foundation reads each back as the same UUID, of version 4 and RFC variant, and none repeats.
    @Test func theyAreVersionFourUUIDsInLowercaseAndDistinct() {
        let ids = (0..<10_000).map { _ in RandomUUID.make() }
        for id in ids.prefix(100) {
            let parsed = UUID(uuidString: id)
            #expect(parsed?.uuidString.lowercased() == id)
            #expect(parsed.map { $0.uuid.6 >> 4 } == 4, "version")
            #expect(parsed.map { $0.uuid.8 >> 6 } == 0b10, "variant")
        }
        #expect(Set(ids).count == ids.count)
    }
}
