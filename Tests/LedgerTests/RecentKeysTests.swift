import Synchronization
import Testing
@testable import Ledger

/// The memory of keys that authenticated lately: a hit needs the same secret, misses are not kept,
/// and a forgotten or outlived key is read again.
@Suite("Recent keys")
struct RecentKeysTests {
    static let id = "k12345678"
    static let secret = "sdg_\(id)_" + String(repeating: "s", count: 43)
    static let key = LedgerKey(id: id, name: "gus", createdAt: 0, expiresAt: nil, revokedAt: nil, models: nil,
                               rateLimitPerMinute: nil, teamID: nil)

    /// A lookup that counts its calls and finds the key with `secret`'s hash.
    final class Store: Sendable {
        let lookUps = Atomic(0)
        func lookUp(_ id: String) -> (key: LedgerKey, secretHash: [UInt8])? {
            lookUps.add(1, ordering: .relaxed)
            return id == RecentKeysTests.id ? (RecentKeysTests.key, APIKeySecret.hash(RecentKeysTests.secret)) : nil
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

    @Test func aFullMemoryMakesRoom() async throws {
        let keys = RecentKeys(lifetime: .seconds(3600), capacity: 1), store = Store()
        _ = await keys.key(secret: Self.secret, lookUp: store.lookUp)
        _ = await keys.key(secret: Self.secret, lookUp: store.lookUp)
        #expect(store.lookUps.load(ordering: .relaxed) == 1, "the one key fits")
    }
}
