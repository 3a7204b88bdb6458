import GenerationCore

/// What `InMemoryLedger` keeps: the same records as the SQL stores' tables, in dictionaries.
struct InMemoryState: Sendable {
    struct StoredKey: Sendable {
        var key: LedgerKey
        /// Only the secret's SHA-256, as on disk.
        let secretHash: [UInt8]
    }

    /// An account's running totals, in micro-credits.
    struct Totals: Sendable {
        var balance: Int64 = 0
        var held: Int64 = 0
        var budget = PeriodCount()
    }

    /// One movement of an account's credits, never changed.
    struct Entry: Sendable {
        let kind: String
        let amount: Int64
        let holdID: String?
        let reason: String
        let at: Timestamp
    }

    struct Hold: Sendable {
        let keyID: String
        let teamID: String?
        let amount: Int64
        /// The periods of the key's and the team's budgets the hold counts in (nil: no budget).
        var keyPeriod: Timestamp?
        var teamPeriod: Timestamp?
        let createdAt: Timestamp
        /// `open`, `posted`, `voided` or `expired`, as the SQL stores write it.
        var state: String
        var charged: Int64?
        var reason: String?
        var expiresAt: Timestamp
        var settledAt: Timestamp?
    }

    struct IdempotencyRecord: Sendable {
        var fingerprint: [UInt8]
        var answer: StoredAnswer?
        var createdAt: Timestamp
        var runningUntil: Timestamp?
        var holdID: String?
        var claim: String?
    }

    struct CountedUsageID: Hashable, Sendable {
        let keyID: String, model: String, dialect: String
        let status: Int
        let minute: Timestamp
    }

    struct IdempotencyID: Hashable, Sendable {
        let keyID: String
        let key: String
    }

    var keys: [String: StoredKey] = [:]
    var teams: [String: LedgerTeam] = [:]
    var totals: [Account: Totals] = [:]
    var entries: [Account: [Entry]] = [:]
    var holds: [String: Hold] = [:]
    var idempotency: [IdempotencyID: IdempotencyRecord] = [:]
    var usage: [UsageEvent] = []
    /// Where in `usage` each counted event is, as the SQL stores' unique index finds it.
    var countedUsage: [CountedUsageID: Int] = [:]
    var adminTokenHash: [UInt8]?
    var jobs: [String: InMemoryLedger.StoredJob] = [:]
    /// The id of each job in `jobs` by its public id, as the SQL stores' unique index finds it.
    var jobIDsByPublicID: [Int64: String] = [:]
    var webhookSecrets: [String: String] = [:]
    var webhooks: [String: InMemoryLedger.StoredDelivery] = [:]
    var alertStates: [String: AlertState] = [:]
    /// Counts jobs and deliveries as they are made: the SQL stores' row order, for ties in time.
    var sequence = 0

    /// An account's balance at `now`; a key's with what its team has available.
    func balance(of account: Account, at now: Timestamp) -> Balance? {
        guard let totals = totals[account] else { return nil }
        var team: (id: String, totals: Totals)?
        if case .key(let id) = account, let teamID = keys[id]?.key.teamID, let totals = self.totals[.team(teamID)] { team = (teamID, totals) }
        return Balance(
            balance: Credits(microCredits: totals.balance), held: Credits(microCredits: totals.held),
            teamAvailable: team.map { Credits(microCredits: $0.totals.balance - $0.totals.held) },
            period: count(of: account, at: now).spending(at: now), teamPeriod: team.flatMap { count(of: .team($0.id), at: now).spending(at: now) })
    }

    /// The account's budget count at `now`, with what its rolling window holds summed in.
    func count(of account: Account, at now: Timestamp) -> PeriodCount {
        var count = totals[account]?.budget ?? PeriodCount()
        guard let budget = count.budget, budget.rolling else { return count }
        count.rollingSpent = holds.values.reduce(0) { sum, hold in
            let owned =
                switch account {
                case .key(let id): hold.keyID == id
                case .team(let id): hold.teamID == id
                }
            guard owned, hold.createdAt > now - budget.window else { return sum }
            return sum + (hold.state == "open" ? hold.amount : hold.state == "posted" ? (hold.charged ?? 0) : 0)
        }
        return count
    }

    /// Settles one hold: releases `releasing` (its amount, or nothing for a hold that expired
    /// already) from the key and its team and, for a charge, writes their post entries.
    mutating func close(_ id: String, as state: String, charge: Int64, reason: String, at: Timestamp, releasing amount: Int64) {
        guard var hold = holds[id] else { return }
        hold.state = state
        hold.charged = charge
        hold.reason = reason
        hold.settledAt = at
        holds[id] = hold
        var accounts = [Account.key(hold.keyID)]
        if let team = hold.teamID { accounts.append(.team(team)) }
        for account in accounts {
            let period = account == .key(hold.keyID) ? hold.keyPeriod : hold.teamPeriod
            totals[account, default: Totals()].budget = totals[account, default: Totals()].budget.settling(holdPeriod: period, delta: charge - amount)
            totals[account, default: Totals()].held -= amount
            totals[account, default: Totals()].balance -= charge
            if charge > 0 { entries[account, default: []].append(Entry(kind: "post", amount: -charge, holdID: id, reason: reason, at: at)) }
        }
    }
}
