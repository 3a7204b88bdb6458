public import GenerationCore

/// A gate that tells the alert monitor of every charge, after the charge and without waiting for
/// anything: what the gate answers, and what it charges, is the gate's below it.
public struct AlertingGate: AccessGate {
    private let gate: any AccessGate
    private let monitor: AlertMonitor

    public init(_ gate: any AccessGate, monitor: AlertMonitor) {
        self.gate = gate
        self.monitor = monitor
    }

    public func settle(_ hold: CreditHold, charge: Credits, recording usage: GenerationUsage) async -> Credits? {
        let remaining = await gate.settle(hold, charge: charge, recording: usage)
        monitor.charged(keyID: usage.keyID, upstream: usage.upstream)
        return remaining
    }

    /// A job's charge, written by its store: told as the gate's own charges are.
    public func settled(_ usage: GenerationUsage, charged: Bool) async {
        await gate.settled(usage, charged: charged)
        if charged { monitor.charged(keyID: usage.keyID, upstream: usage.upstream) }
    }

    // Everything else as the gate below does it.

    public func authenticate(apiKey: String) async -> AuthenticatedKey? { await gate.authenticate(apiKey: apiKey) }
    public func remaining(for key: AuthenticatedKey) async -> Credits? { await gate.remaining(for: key) }
    public func reserve(_ amount: Credits, for key: AuthenticatedKey, queuedUpTo queueTime: Duration) async -> CreditReservation {
        await gate.reserve(amount, for: key, queuedUpTo: queueTime)
    }
    public func claimIdempotency(_ idempotencyKey: String, fingerprint: [UInt8], for key: AuthenticatedKey) async -> IdempotencyOutcome {
        await gate.claimIdempotency(idempotencyKey, fingerprint: fingerprint, for: key)
    }
    public func backIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, with hold: CreditHold) async {
        await gate.backIdempotency(ticket, for: key, with: hold)
    }
    public func completeIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, answer: StoredAnswer) async {
        await gate.completeIdempotency(ticket, for: key, answer: answer)
    }
    public func releaseIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey) async {
        await gate.releaseIdempotency(ticket, for: key)
    }
    public func settle(_ hold: CreditHold, charge: Credits) async -> Credits? { await gate.settle(hold, charge: charge) }
    public func renew(_ hold: CreditHold) async -> Bool { await gate.renew(hold) }
    public func mayStillSpend(keyID: String) async -> Bool { await gate.mayStillSpend(keyID: keyID) }
    public var holdRenewalInterval: Duration { gate.holdRenewalInterval }
    public func release(_ hold: CreditHold, reason: String) async -> Credits? { await gate.release(hold, reason: reason) }
    public func recordUsage(_ usage: GenerationUsage) async { await gate.recordUsage(usage) }
}
