public import CoreMetrics
public import GenerationCore
public import Logging

/// The dialects' gate and the job executor's settlement, backed by the credit ledger. A ledger
/// failure never lets a request through unmetered: authentication fails closed and a reservation
/// reports `unavailable`.
public struct LedgerGate: AccessGate {
    let ledger: any Ledger
    /// How long a hold lives if its request never settles it (a crash): the reaper voids it then.
    let holdLifetime: Duration
    let clock: any WallClock
    let logger: Logger
    let metrics: UsageMetrics

    public init(ledger: any Ledger, holdLifetime: Duration, clock: any WallClock, logger: Logger, metricsFactory: any MetricsFactory) {
        self.ledger = ledger
        self.holdLifetime = holdLifetime
        self.clock = clock
        self.logger = logger
        metrics = UsageMetrics(factory: metricsFactory)
    }

    public func authenticate(apiKey: String) async -> AuthenticatedKey? {
        do {
            guard let key = try await ledger.key(secret: apiKey), key.isUsable(at: clock.millisecondsNow) else { return nil }
            return AuthenticatedKey(id: key.id, models: key.models, rateLimitPerMinute: key.rateLimitPerMinute)
        } catch {
            logger.error("ledger unavailable", metadata: ["operation": "authenticate", "error": "\(error)"])
            return nil
        }
    }

    public func remaining(for key: AuthenticatedKey) async -> Credits? {
        try? await ledger.balance(of: .key(key.id)).spendable
    }

    public func reserve(_ amount: Credits, for key: AuthenticatedKey, queuedUpTo queueTime: Duration) async -> CreditReservation {
        let expiresAt = clock.millisecondsNow + (holdLifetime + queueTime).wholeMilliseconds
        do {
            switch try await ledger.reserve(keyID: key.id, amount: amount, expiresAt: expiresAt) {
            case .held(let hold, let available): return .held(CreditHold(id: hold.rawValue), remaining: available)
            case .insufficient(let available): return .insufficient(remaining: available)
            }
        } catch .unknownKey, .unusableKey {
            return .unauthorized
        } catch {
            logger.error("ledger unavailable", metadata: ["operation": "reserve", "key.id": "\(key.id)", "error": "\(error)"])
            return .unavailable
        }
    }

    /// False only when the ledger says the hold is no longer open. A renewal the ledger could not
    /// make (busy past its timeout, a connection reset) says nothing of the hold: it is asked
    /// again at the next interval, where giving up would let the hold expire under work still
    /// running, its credits spent again elsewhere before the work's charge.
    public func renew(_ hold: CreditHold) async -> Bool {
        do {
            return try await ledger.renewHold(HoldID(hold.id), until: clock.millisecondsNow + holdLifetime.wholeMilliseconds)
        } catch {
            logger.error("hold not renewed", metadata: ["hold": "\(hold.id)", "error": "\(error)"])
            return true
        }
    }

    /// A third of the lifetime: two renewals may fail (a busy database) before the hold expires.
    public var holdRenewalInterval: Duration { holdLifetime / 3 }

    public func settle(_ hold: CreditHold, charge: Credits) async -> Credits? {
        await settle(hold) { () throws(LedgerError) in try await ledger.post(HoldID(hold.id), charge: charge) }
    }

    public func settle(_ hold: CreditHold, charge: Credits, recording usage: GenerationUsage) async -> Credits? {
        metrics.generationRecorded(usage)
        return await settle(hold) { () throws(LedgerError) in try await ledger.post(HoldID(hold.id), charge: charge, recording: event(usage)) }
    }

    private func settle(_ hold: CreditHold, _ post: @escaping @Sendable () async throws(LedgerError) -> Balance) async -> Credits? {
        do {
            return try await post().spendable
        } catch .storage(let detail) {
            // The ledger could not be written just now (busy past its timeout, a connection
            // reset), and the work is delivered: its charge is made later, not forgotten. (An
            // expired hold is still charged by `post`, so the tries may outlast the hold.)
            logger.error("ledger post failed; trying again", metadata: ["hold": "\(hold.id)", "error": "\(detail)"])
            Task { await postLater(hold, post) }
            return nil
        } catch {
            logger.error("ledger post failed", metadata: ["hold": "\(hold.id)", "error": "\(error)"])
            return nil
        }
    }

    /// Tries a charge again, at growing intervals, until the ledger takes it or says the hold is
    /// settled already (one answer lost on its way back), or for an hour; the log then is the
    /// record of work that went unpaid. A gateway that stops meanwhile leaves the hold to expire.
    private func postLater(_ hold: CreditHold, _ post: @Sendable () async throws(LedgerError) -> Balance) async {
        var delay = Duration.seconds(1), waited = Duration.zero
        while waited < Self.postRetryFor {
            try? await Task.sleep(for: delay)
            waited += delay
            do {
                _ = try await post()
                logger.notice("ledger post made on a later try", metadata: ["hold": "\(hold.id)"])
                return
            } catch .storage {
                delay = min(delay * 2, .seconds(60))
            } catch {
                logger.notice("ledger post ended on a later try", metadata: ["hold": "\(hold.id)", "error": "\(error)"])
                return
            }
        }
        logger.critical("ledger post given up: the work went unpaid", metadata: ["hold": "\(hold.id)"])
    }

    static let postRetryFor: Duration = .seconds(3600)

    public func release(_ hold: CreditHold, reason: String) async -> Credits? {
        do {
            return try await ledger.void(HoldID(hold.id), reason: reason).spendable
        } catch .holdSettled {
            // Expired already (a job whose hold ran out before its turn): nothing is left to release.
            logger.notice("hold already ended", metadata: ["hold": "\(hold.id)"])
            return nil
        } catch {
            logger.error("ledger void failed", metadata: ["hold": "\(hold.id)", "error": "\(error)"])
            return nil
        }
    }

    /// A ledger that cannot be read now answers yes: the key could spend when its job was queued,
    /// and the job's hold still decides whether it runs.
    public func mayStillSpend(keyID: String) async -> Bool {
        do {
            return try await ledger.key(id: keyID)?.isUsable(at: clock.millisecondsNow) ?? false
        } catch {
            logger.error("ledger unavailable", metadata: ["operation": "key", "key.id": "\(keyID)", "error": "\(error)"])
            return true
        }
    }

    /// A job's settle was written by its store (`JobStore.settleJob`): only the metrics are left.
    public func settled(_ usage: GenerationUsage, charged: Bool) async {
        metrics.generationRecorded(usage)
    }

    public func recordUsage(_ usage: GenerationUsage) async {
        metrics.generationRecorded(usage)
        do {
            if usage.heldNothing {
                try await ledger.count(
                    CountedRequest(
                        keyID: usage.keyID, model: usage.model, dialect: usage.dialect, status: usage.status,
                        durationMilliseconds: usage.duration.wholeMilliseconds, at: clock.millisecondsNow))
            } else {
                try await ledger.record(event(usage))
            }
        } catch {
            logger.error("usage not recorded", metadata: ["request_id": "\(usage.requestID)", "error": "\(error)"])
        }
    }
}

extension UsageEvent {
    /// The event a generation's usage is recorded as, at `at`.
    public init(_ usage: GenerationUsage, at: Timestamp) {
        self.init(
            keyID: usage.keyID, model: usage.model, dialect: usage.dialect, status: usage.status, cost: usage.cost,
            durationMilliseconds: usage.duration.wholeMilliseconds, backend: usage.upstream?.name ?? "default",
            requestID: usage.requestID, at: at, upstreamCost: usage.upstream?.cost,
            upstreamRemainingCredits: usage.upstream?.remainingCredits)
    }
}

extension LedgerGate {
    private func event(_ usage: GenerationUsage) -> UsageEvent {
        UsageEvent(usage, at: clock.millisecondsNow)
    }

    public func claimIdempotency(_ idempotencyKey: String, fingerprint: [UInt8], for key: AuthenticatedKey) async -> IdempotencyOutcome {
        do {
            // Until a hold backs the claim, it stands as long as a hold would.
            let at = clock.millisecondsNow, claim = RandomUUID.make()
            switch try await ledger.claimIdempotencyKey(
                keyID: key.id, key: idempotencyKey, fingerprint: fingerprint, at: at,
                runningUntil: at + holdLifetime.wholeMilliseconds, claim: claim)
            {
            case .claimed: return .proceed(IdempotencyTicket(key: idempotencyKey, claim: claim))
            case .inProgress: return .inProgress
            case .mismatch: return .mismatch
            case .completed(let answer): return .replay(answer)
            }
        } catch {
            logger.error("ledger unavailable", metadata: ["operation": "idempotency", "error": "\(error)"])
            return .unavailable
        }
    }

    public func backIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, with hold: CreditHold) async {
        do {
            try await ledger.backIdempotencyKey(keyID: key.id, key: ticket.key, claim: ticket.claim, with: HoldID(hold.id))
        } catch {
            logger.error("idempotency claim not tied to its hold", metadata: ["error": "\(error)"])
        }
    }

    public func completeIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, answer: StoredAnswer) async {
        do {
            try await ledger.completeIdempotencyKey(keyID: key.id, key: ticket.key, claim: ticket.claim, answer: answer)
        } catch {
            logger.error("idempotent answer not kept", metadata: ["error": "\(error)"])
        }
    }

    public func releaseIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey) async {
        try? await ledger.releaseIdempotencyKey(keyID: key.id, key: ticket.key, claim: ticket.claim)
    }
}
