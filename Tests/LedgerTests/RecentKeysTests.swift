import Synchronization
import Testing

@testable import Ledger

/// The memory of keys that authenticated lately: a hit needs the same secret, misses are not kept,
/// and a forgotten or outlived key is read again.
@Suite("Recent keys")
struct RecentKeysTests {
    static let id = "k12345678", otherID = "k87654321"
    static let secret = secret(of: id)
    static let key = key(id)

    static func secret(of id: String) -> String { "sdg_\(id)_" + String(repeating: "s", count: 43) }

    static func key(_ id: String) -> LedgerKey {
        LedgerKey(id: id, name: "gus", createdAt: 0, expiresAt: nil, revokedAt: nil, models: nil, rateLimitPerMinute: nil, teamID: nil)
    }

    /// A lookup that counts its calls and finds the keys `id` and `otherID`, each with its secret.
    final class Store: Sendable {
        let lookUps = Atomic(0)
        func lookUp(_ id: String) -> (key: LedgerKey, secretHash: [UInt8])? {
            lookUps.add(1, ordering: .relaxed)
            guard [RecentKeysTests.id, RecentKeysTests.otherID].contains(id) else { return nil }
            return (RecentKeysTests.key(id), APIKeySecret.hash(RecentKeysTests.secret(of: id)))
        }
    }

    @Test func aKeyIsReadOnceWhileRememberedAndAgainOnceForgotten() async throws {
        let keys = RecentKeys(lifetime: .seconds(3600)), store = Store()
        #expect(await keys.key(secret: Self.secret, lookUp: store.lookUp) == Self.key)
        #expect(await keys.key(secret: Self.secret, lookUp: store.lookUp) == Self.key)
        #expect(store.lookUps.load(ordering: .relaxed) == 1)
        keys.forget(Self.id)
        #expect(await keys.key(secret: Self.secret, lookUp: store.lookUp) == Self.key)
        #expect(store.lookUps.load(ordering: .relaxed) == 2)
    }

    @Test func anotherSecretForTheSameIdIsRefusedEvenWhileTheKeyIsRemembered() async throws {
        let keys = RecentKeys(lifetime: .seconds(3600)), store = Store()
        let forged = "sdg_\(Self.id)_" + String(repeating: "f", count: 43)
        #expect(await keys.key(secret: Self.secret, lookUp: store.lookUp) == Self.key)
        #expect(await keys.key(secret: forged, lookUp: store.lookUp) == nil)
        #expect(await keys.key(secret: "not a key", lookUp: store.lookUp) == nil)
        // The refusal is not remembered: the forged secret was checked against the store's hash.
        #expect(store.lookUps.load(ordering: .relaxed) == 2)
    }

    @Test func aKeyOutlivingItsMemoryIsReadAgain() async throws {
        let keys = RecentKeys(lifetime: .zero), store = Store()
        _ = await keys.key(secret: Self.secret, lookUp: store.lookUp)
        _ = await keys.key(secret: Self.secret, lookUp: store.lookUp)
        #expect(store.lookUps.load(ordering: .relaxed) == 2)
    }

    /// A second key in a memory with room for one: the first is forgotten to make room, and the
    /// second is remembered.
    @Test func aFullMemoryMakesRoom() async throws {
        let keys = RecentKeys(lifetime: .seconds(3600), capacity: 1), store = Store()
        let other = Self.secret(of: Self.otherID)
        #expect(await keys.key(secret: Self.secret, lookUp: store.lookUp) == Self.key)
        #expect(await keys.key(secret: other, lookUp: store.lookUp) == Self.key(Self.otherID))
        #expect(await keys.key(secret: other, lookUp: store.lookUp) == Self.key(Self.otherID))
        #expect(store.lookUps.load(ordering: .relaxed) == 2, "the second key is remembered")
        #expect(await keys.key(secret: Self.secret, lookUp: store.lookUp) == Self.key)
        #expect(store.lookUps.load(ordering: .relaxed) == 3, "the first was forgotten")
    }
}
