import Synchronization

/// Keys that authenticated in the last second, so that a member's requests do not each read their
/// key from the database: on a proxied image request that read cost about as much as the hold.
///
/// Only the authentication answer is kept, and only for `lifetime`. Spending does not rely on it:
/// every reservation checks in its own transaction that the key is neither revoked nor expired, so
/// a key revoked anywhere (another replica, `sdgate keys revoke`) holds no credit from that moment.
/// What may lag by up to `lifetime` elsewhere is the rest of the key (its models, its rate limit);
/// this process's own changes to a key take effect at once (`forget`).
final class RecentKeys: Sendable {
    private struct Entry {
        let secretHash: [UInt8]
        let key: LedgerKey
        let until: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let lifetime: Duration
    /// Bounds the memory: a gateway with more keys than this in use at once reads some again.
    private let capacity: Int

    init(lifetime: Duration = .seconds(1), capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// The key a secret names, from memory when it authenticated lately, else from `lookUp` (the
    /// key and its stored secret hash); nil for a secret of no key. Failures are not kept.
    func key<E: Error>(
        secret: String, lookUp: (String) async throws(E) -> (key: LedgerKey, secretHash: [UInt8])?
    ) async throws(E) -> LedgerKey? {
        guard let id = APIKeySecret.keyID(of: secret) else { return nil }
        let hash = APIKeySecret.hash(secret)
        let now = ContinuousClock.now
        let remembered = entries.withLock { entries in
            entries[id].flatMap { $0.until > now && APIKeySecret.constantTimeEqual($0.secretHash, hash) ? $0.key : nil }
        }
        if let remembered { return remembered }
        guard let found = try await lookUp(id), APIKeySecret.constantTimeEqual(found.secretHash, hash) else { return nil }
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { $0.value.until > now }
                if entries.count >= capacity { entries.removeAll() }
            }
            entries[id] = Entry(secretHash: hash, key: found.key, until: now + lifetime)
        }
        return found.key
    }

    func forget(_ id: String) {
        _ = entries.withLock { $0.removeValue(forKey: id) }
    }
}
