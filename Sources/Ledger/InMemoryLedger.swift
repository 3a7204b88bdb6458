public import GenerationCore
import Synchronization

/// The whole ledger in this process's memory, for fast tests of the layers above: the same
/// contract as the SQL stores (`LedgerContractTests` runs against all three), nothing kept on disk.
///
/// Every operation is one critical section of one lock, so a check and the change it allows (a
/// reserve, a deduction, a settle) are atomic as the SQL stores' statements are.
public final class InMemoryLedger: Ledger {
    let state = Mutex(InMemoryState())
    let clock: any WallClock

    public init(clock: any WallClock = SystemWallClock()) {
        self.clock = clock
    }

    func now() -> Timestamp { clock.millisecondsNow }

    /// Runs `body` with the state locked: one atomic step.
    func locked<T: Sendable>(_ body: (inout InMemoryState) throws(LedgerError) -> T) throws(LedgerError) -> T {
        try state.withLock { (state: inout InMemoryState) throws(LedgerError) -> T in try body(&state) }
    }

    // MARK: Keys

    public func createKey(_ key: NewKey) async throws(LedgerError) -> (key: LedgerKey, secret: String) {
        let (id, secret) = APIKeySecret.make()
        let created = LedgerKey(
            id: id, name: key.name, createdAt: now(), expiresAt: key.expiresAt, revokedAt: nil,
            models: key.models, rateLimitPerMinute: key.rateLimitPerMinute, teamID: key.teamID)
        try locked { (state: inout InMemoryState) throws(LedgerError) in
            if let team = key.teamID, state.teams[team] == nil { throw .unknownTeam(team) }
            state.keys[id] = InMemoryState.StoredKey(key: created, secretHash: APIKeySecret.hash(secret))
            state.totals[.key(id)] = InMemoryState.Totals()
        }
        return (created, secret)
    }

    public func key(secret: String) async throws(LedgerError) -> LedgerKey? {
        guard let id = APIKeySecret.keyID(of: secret) else { return nil }
        let hash = APIKeySecret.hash(secret)
        return try locked { state in
            state.keys[id].flatMap { APIKeySecret.constantTimeEqual($0.secretHash, hash) ? $0.key : nil }
        }
    }

    public func key(id: String) async throws(LedgerError) -> LedgerKey? {
        try locked { state in state.keys[id]?.key }
    }

    public func keys() async throws(LedgerError) -> [LedgerKey] {
        try locked { state in state.keys.values.map(\.key).sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) } }
    }

    public func revoke(keyID: String) async throws(LedgerError) {
        let now = now()
        try locked { (state: inout InMemoryState) throws(LedgerError) in
            guard let stored = state.keys[keyID] else { throw .unknownKey(keyID) }
            if stored.key.revokedAt == nil { state.keys[keyID]?.key = stored.key.with(revokedAt: now) }
        }
    }

    public func setLimits(keyID: String, models: [String]?, rateLimitPerMinute: Int?, expiresAt: Timestamp?) async throws(LedgerError) -> LedgerKey {
        try locked { (state: inout InMemoryState) throws(LedgerError) -> LedgerKey in
            guard let old = state.keys[keyID]?.key else { throw .unknownKey(keyID) }
            let key = LedgerKey(
                id: old.id, name: old.name, createdAt: old.createdAt, expiresAt: expiresAt, revokedAt: old.revokedAt,
                models: models, rateLimitPerMinute: rateLimitPerMinute, teamID: old.teamID)
            state.keys[keyID]?.key = key
            return key
        }
    }

    // MARK: Teams

    public func createTeam(name: String) async throws(LedgerError) -> LedgerTeam {
        let team = LedgerTeam(id: APIKeySecret.makeID(prefix: "t"), name: name, createdAt: now())
        try locked { (state: inout InMemoryState) throws(LedgerError) in
            guard !state.teams.values.contains(where: { $0.name == name }) else { throw .teamExists(name) }
            state.teams[team.id] = team
            state.totals[.team(team.id)] = InMemoryState.Totals()
        }
        return team
    }

    public func team(id: String) async throws(LedgerError) -> LedgerTeam? {
        try locked { state in state.teams[id] }
    }

    public func teams() async throws(LedgerError) -> [LedgerTeam] {
        try locked { state in state.teams.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) } }
    }

    // MARK: Usage and settings

    public func record(_ usage: UsageEvent) async throws(LedgerError) {
        try locked { state in state.usage.append(usage) }
    }

    public func count(_ request: CountedRequest) async throws(LedgerError) {
        let id = InMemoryState.CountedUsageID(
            keyID: request.keyID, model: request.model, dialect: request.dialect, status: request.status, minute: request.minute)
        try locked { state in
            if let index = state.countedUsage[id] {
                state.usage[index].requests += 1
                state.usage[index].durationMilliseconds = max(state.usage[index].durationMilliseconds, request.durationMilliseconds)
            } else {
                state.countedUsage[id] = state.usage.count
                state.usage.append(
                    UsageEvent(
                        keyID: request.keyID, model: request.model, dialect: request.dialect, status: request.status, cost: .zero,
                        durationMilliseconds: request.durationMilliseconds, backend: "", requestID: "", at: request.minute,
                        counted: true))
            }
        }
    }

    /// In the order recorded within a millisecond, as the SQL stores order by their row ids.
    public func usage(_ scope: UsageScope, latest limit: Int) async throws(LedgerError) -> [UsageEvent] {
        try locked { state in
            let events = state.usage.enumerated().filter { state.scope(scope, contains: $0.element) }
            return events.sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.suffix(max(limit, 0)).map(\.element)
        }
    }

    public func usageTotals(_ scope: UsageScope, by columns: UsageColumns, cuts: [Timestamp]) async throws(LedgerError) -> [UsageTotal] {
        struct Group: Hashable {
            let bucket: Int
            let keyID: String?, model: String?, dialect: String?
        }
        return try locked { state in
            var sums: [Group: (requests: Int, microCredits: Int128)] = [:]
            for event in state.usage where state.scope(scope, contains: event) {
                let group = Group(
                    bucket: UsageScope.bucket(of: event.at, cuts: cuts), keyID: columns.contains(.key) ? event.keyID : nil,
                    model: columns.contains(.model) ? event.model : nil, dialect: columns.contains(.dialect) ? event.dialect : nil)
                sums[group, default: (0, 0)].requests += event.requests
                sums[group, default: (0, 0)].microCredits += Int128(event.cost.microCredits)
            }
            return sums.map { group, sum in
                UsageTotal(
                    bucket: group.bucket, keyID: group.keyID, model: group.model, dialect: group.dialect, requests: sum.requests,
                    microCredits: sum.microCredits)
            }
        }
    }

    public func storedAdminTokenHash() async throws(LedgerError) -> [UInt8]? {
        try locked { state in state.adminTokenHash }
    }

    public func storeAdminTokenHash(_ hash: [UInt8]) async throws(LedgerError) -> Bool {
        try locked { state in
            guard state.adminTokenHash == nil else { return false }
            state.adminTokenHash = hash
            return true
        }
    }
}

extension InMemoryState {
    func scope(_ scope: UsageScope, contains event: UsageEvent) -> Bool {
        (scope.keyID.map { event.keyID == $0 } ?? true) && (scope.teamID.map { keys[event.keyID]?.key.teamID == $0 } ?? true)
            && event.at >= scope.from && event.at < scope.to
    }
}

extension LedgerKey {
    func with(revokedAt: Timestamp) -> LedgerKey {
        LedgerKey(
            id: id, name: name, createdAt: createdAt, expiresAt: expiresAt, revokedAt: revokedAt,
            models: models, rateLimitPerMinute: rateLimitPerMinute, teamID: teamID)
    }
}
