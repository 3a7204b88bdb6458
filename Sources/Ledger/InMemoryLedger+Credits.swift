public import GenerationCore

/// Credits and holds in memory, with the SQL stores' rules: no deduction below what is available,
/// no account past `Credits.maximum`, a member's hold held of its team's budget in the same step.
extension InMemoryLedger {
    public func adjust(_ account: Account, by amount: Credits, reason: String) async throws(LedgerError) -> Balance {
        try AdjustmentRule.check(amount)
        let micro = amount.microCredits, now = now()
        return try locked { (state: inout InMemoryState) throws(LedgerError) -> Balance in
            guard let totals = state.totals[account] else { throw account.unknown }
            // Both lie within ±`Credits.maximum` (checked above, and kept so by every movement but a late
            // charge, which is bounded by its hold): the sum cannot overflow.
            let balance = totals.balance + micro
            // A top-up smaller than a debt (a late charge's) pays part of it.
            guard micro > 0 || balance - totals.held >= 0, balance <= Credits.maximum.microCredits else {
                throw AdjustmentRule.refusal(of: amount)
            }
            state.totals[account]?.balance = balance
            state.entries[account, default: []].append(
                InMemoryState.Entry(kind: AdjustmentRule.entryKind(of: amount), amount: micro, holdID: nil, reason: reason, at: now))
            guard let result = state.balance(of: account, at: now) else { throw account.unknown }
            return result
        }
    }

    public func balance(of account: Account) async throws(LedgerError) -> Balance {
        let now = now()
        guard let balance = try locked({ state in state.balance(of: account, at: now) }) else { throw account.unknown }
        return balance
    }

    public func reserve(keyID: String, amount: Credits, expiresAt: Timestamp) async throws(LedgerError) -> Reservation {
        guard amount > .zero else { throw .invalidAmount }
        let now = now(), hold = HoldID(RandomUUID.timeOrdered(milliseconds: now)), micro = amount.microCredits
        return try locked { (state: inout InMemoryState) throws(LedgerError) -> Reservation in
            guard let key = state.keys[keyID]?.key else { throw .unknownKey(keyID) }
            guard key.isUsable(at: now) else { throw .unusableKey(keyID) }
            // A price past the largest balance is covered by none; below it, the subtractions stay
            // within 64 bits for an account in debt too.
            guard micro <= Credits.maximum.microCredits else {
                return .insufficient(available: state.balance(of: .key(keyID), at: now)?.spendable ?? .zero)
            }
            let own = state.totals[.key(keyID)] ?? InMemoryState.Totals()
            let team = key.teamID.map { state.totals[.team($0)] ?? InMemoryState.Totals() }
            // What would be left of the key's credits, and of its team's, once this is held; and
            // their periodic budgets' counts with it (nil: the budget refuses).
            let ownCount = state.count(of: .key(keyID), at: now).reserving(micro, at: now)
            let teamCount = key.teamID.map { state.count(of: .team($0), at: now).reserving(micro, at: now) }
            var available = own.balance - own.held - micro
            if let team { available = min(available, team.balance - team.held - micro) }
            let teamRefused = if case .some(.none) = teamCount { true } else { false }
            guard available >= 0, let ownCount, !teamRefused else {
                return .insufficient(available: state.balance(of: .key(keyID), at: now)?.spendable ?? .zero)
            }
            state.totals[.key(keyID), default: .init()].held += micro
            state.totals[.key(keyID), default: .init()].budget = ownCount.count
            if let teamID = key.teamID, let teamCount = teamCount.flatMap({ $0 }) {
                state.totals[.team(teamID), default: .init()].held += micro
                state.totals[.team(teamID), default: .init()].budget = teamCount.count
            }
            state.holds[hold.rawValue] = InMemoryState.Hold(
                keyID: keyID, teamID: key.teamID, amount: micro, keyPeriod: ownCount.period,
                teamPeriod: teamCount.flatMap { $0?.period }, createdAt: now, state: "open", expiresAt: expiresAt)
            let after = state.balance(of: .key(keyID), at: now)?.spendable ?? .zero
            return .held(hold, available: after)
        }
    }

    public func renewHold(_ hold: HoldID, until expiresAt: Timestamp) async throws(LedgerError) -> Bool {
        try locked { state in
            guard let open = state.holds[hold.rawValue], open.state == "open" else { return false }
            state.holds[hold.rawValue]?.expiresAt = max(open.expiresAt, expiresAt)
            return true
        }
    }

    public func post(_ hold: HoldID, charge: Credits) async throws(LedgerError) -> Balance {
        try settle(hold, state: "posted", charge: charge, reason: "charged")
    }

    public func post(_ hold: HoldID, charge: Credits, recording usage: UsageEvent) async throws(LedgerError) -> Balance {
        try settle(hold, state: "posted", charge: charge, reason: "charged", recording: usage)
    }

    public func void(_ hold: HoldID, reason: String) async throws(LedgerError) -> Balance {
        try settle(hold, state: "voided", charge: .zero, reason: reason)
    }

    private func settle(
        _ hold: HoldID, state settled: String, charge: Credits, reason: String,
        recording usage: UsageEvent? = nil
    ) throws(LedgerError) -> Balance {
        let now = now()
        return try locked { (state: inout InMemoryState) throws(LedgerError) -> Balance in
            let keyID = try state.settle(hold, as: settled, charge: charge, reason: reason, at: now)
            if let usage { state.usage.append(usage) }
            guard let balance = state.balance(of: .key(keyID), at: now) else { throw .unknownKey(keyID) }
            return balance
        }
    }

    public func expireHolds(now: Timestamp) async throws(LedgerError) -> Int {
        try locked { state in
            let overdue = state.holds.filter { $0.value.state == "open" && $0.value.expiresAt <= now }
            for (id, hold) in overdue { state.close(id, as: "expired", charge: 0, reason: "expired", at: now, releasing: hold.amount) }
            return overdue.count
        }
    }

    public func openHolds() async throws(LedgerError) -> OpenHolds {
        try locked { state in
            let open = state.holds.values.filter { $0.state == "open" }
            return OpenHolds(count: open.count, amount: Credits(microCredits: open.reduce(0) { $0 + $1.amount }))
        }
    }

    public func verify() async throws(LedgerError) -> [String] {
        try locked { state in
            state.totals.sorted { $0.key.id < $1.key.id }.flatMap { account, totals in
                func owned(_ hold: InMemoryState.Hold) -> Bool {
                    switch account {
                    case .key(let id): hold.keyID == id
                    case .team(let id): hold.teamID == id
                    }
                }
                let holds = state.holds.values.filter(owned)
                let entries = state.entries[account] ?? []
                let counted = totals.budget.countedPeriod
                let inPeriod = holds.filter { hold in
                    counted != nil && counted == (account == .key(hold.keyID) ? hold.keyPeriod : hold.teamPeriod)
                }
                let posts = entries.filter { $0.kind == "post" }
                // The post entries whose hold is a posted hold of this account that charged their amount.
                let matched = posts.filter { entry in
                    guard let hold = entry.holdID.flatMap({ state.holds[$0] }), owned(hold), hold.state == "posted", let charged = hold.charged
                    else { return false }
                    return charged > 0 && entry.amount == -charged
                }
                return BalanceAudit(
                    account: account.id, balance: totals.balance, fromEntries: entries.reduce(0) { $0 + $1.amount },
                    held: totals.held, fromHolds: holds.filter { $0.state == "open" }.reduce(0) { $0 + $1.amount },
                    postEntries: Int64(posts.count), matchedEntries: Int64(matched.count),
                    matchedHolds: Int64(Set(matched.compactMap(\.holdID)).count),
                    chargedHolds: Int64(holds.filter { $0.state == "posted" && ($0.charged ?? 0) > 0 }.count),
                    lateCharges: Int64(posts.filter { $0.reason == Self.lateChargeReason }.count),
                    periodSpent: counted.map { _ in totals.budget.spent },
                    fromPeriodHolds: inPeriod.reduce(0) { $0 + ($1.state == "open" ? $1.amount : $1.state == "posted" ? ($1.charged ?? 0) : 0) }
                ).problems
            }
        }
    }
}

extension InMemoryState {
    /// Posts (`settled` "posted") or voids an open hold, or posts late a hold that expired; returns
    /// its key. Throws, having changed nothing, for a hold unknown, settled already, or charged
    /// past its amount.
    mutating func settle(_ hold: HoldID, as settled: String, charge: Credits, reason: String, at now: Timestamp) throws(LedgerError) -> String {
        guard let found = holds[hold.rawValue] else { throw .unknownHold(hold) }
        // A charge for work that outlived its hold is still made: nothing released, all charged.
        let late = settled == "posted" && found.state == "expired"
        guard found.state == "open" || late else { throw .holdSettled(hold) }
        guard charge.microCredits >= 0, charge.microCredits <= found.amount else { throw .chargeExceedsHold(hold) }
        close(
            hold.rawValue, as: settled, charge: charge.microCredits, reason: late ? InMemoryLedger.lateChargeReason : reason,
            at: now, releasing: late ? 0 : found.amount)
        return found.keyID
    }
}
