import Foundation
public import GenerationCore
public import Ledger
public import Logging

/// Runs generation jobs for the job runner: generates, writes the outputs under the names the
/// payload chose, and settles each job once its end is recorded: its credits, its usage and its
/// webhook, in one step of its store.
public struct GenerationJobExecutor: Sendable {
    public let backend: any InferenceBackend
    public let outputs: any OutputStorage
    public let credits: any CreditSettlement
    /// Where the jobs are, and where their settles are written, with their credits.
    public let store: any JobStore
    public let completions: JobCompletions
    /// Where the webhooks of finished jobs go out, in the body their dialect renders; nil: they are not sent.
    public let webhooks: (dispatcher: WebhookDispatcher, body: any JobWebhookRenderer)?
    public let clock: any WallClock
    /// Where each job's generation time is measured, for the queue's ETAs.
    public let timings: JobTimings
    let logger: Logger

    public init(
        backend: any InferenceBackend, outputs: any OutputStorage, credits: any CreditSettlement, store: any JobStore,
        completions: JobCompletions, webhooks: (dispatcher: WebhookDispatcher, body: any JobWebhookRenderer)? = nil,
        clock: any WallClock = SystemWallClock(), timings: JobTimings = JobTimings(), logger: Logger = Logger(label: "sdgate.jobs")
    ) {
        self.timings = timings
        self.backend = backend
        self.outputs = outputs
        self.credits = credits
        self.store = store
        self.completions = completions
        self.webhooks = webhooks
        self.clock = clock
        self.logger = logger
    }

    public func execute(_ job: JobRecord) async -> JobRunner.Outcome {
        guard let payload = GenerationJobPayload.decode(job.payload), var request = payload.request.generationRequest(input: job.input) else {
            return .failed("the stored request could not be read")
        }
        // Its hold must still be open, and is renewed for the run from here. One that expired while
        // the job waited (queued again after its gateway died, for longer than the hold had left)
        // released its credits, which may be spent since: run, the job would be charged into debt.
        guard await credits.renew(CreditHold(id: job.hold.rawValue)) else {
            return .failed("its held credits were released before it ran")
        }
        // From its revocation (or expiry) on, a key spends nothing: a job it queued before does not
        // run, and its hold is released.
        guard await credits.mayStillSpend(keyID: job.keyID) else { return .failed("its key was revoked or has expired") }
        // A cancel while it runs stops it where the backend can stop (a local worker, between steps).
        let stop = JobRunner.stop
        request.stop = stop
        timings.started(job.id, model: job.model)
        defer { timings.ended(job.id) }
        let began = ContinuousClock.now
        do {
            let result = try await credits.generate(request, on: backend, holding: CreditHold(id: job.hold.rawValue))
            let took = ContinuousClock.now - began
            // Only the images delivered become files, and only they are charged.
            let images = Array(result.images.prefix(payload.files.count))
            guard !images.isEmpty else { return .failed("the backend returned no images") }
            let cancelled = stop?.isRequested == true
            if !cancelled {
                timings.record(model: job.model, backend: result.upstream?.name ?? "local", seconds: took.seconds)
            }
            // Cancelled, it ran to its end all the same (an upstream call): charged, never delivered.
            for (image, name) in zip(images, payload.files) where !cancelled {
                let bytes = payload.base64 ? Array(image.base64.bytes) : image.bytes
                do {
                    try await outputs.save(bytes, named: name)
                } catch {
                    // Failed, the job is charged nothing, and its settle deletes the images stored before.
                    return .failed("the images could not be stored")
                }
            }
            let charge = payload.price.map { min($0.cost(images: images.count), job.cost) } ?? job.cost
            return .completed(
                GenerationJobResult(
                    seed: result.seed, generationSeconds: result.generationTime.seconds, backend: result.upstream?.name,
                    upstreamCost: result.upstream?.cost,
                    upstreamRemainingCredits: result.upstream?.remainingCredits,
                    delivered: images.count, chargedMicroCredits: charge.microCredits
                ).encoded())
        } catch {
            return .failed(error.description)
        }
    }

    /// Charges a completed job's hold for the images it delivered, or releases a failed one's, with
    /// its usage event and its webhook, in one step of the store that settles each job once: the
    /// runner settles a job as it ends, the upkeep one whose gateway died before (or whose settle
    /// failed), and whichever comes second changes nothing. The event names the dialect the job
    /// was queued through, which is stored under its public name (`segmind` for v2 too), and the
    /// job by the id its client knows.
    public func settle(_ job: JobRecord, _ outcome: JobRunner.Outcome) async {
        // From queued to answered: what the client waited. (The record is the claimed one: it
        // does not know its own end.)
        let duration = Duration.milliseconds(max(0, clock.now.millisecondsSince1970 - job.createdAt))
        // The payload is decoded once, for the id and the webhook.
        let ended = GenerationJob(job, ending: outcome)
        let requestID = ended?.payload.knownByPublicID == true ? String(job.publicID) : job.id
        // A cancelled job's usage says so (499, as for a client that closed its request).
        let cancelled = job.cancelledAt != nil
        let usage: GenerationUsage, charge: Credits?, releaseReason: String
        switch outcome {
        case .completed(let answer):
            // Cancelled while an upstream ran it: the team paid for it, so it is charged; its
            // images are not delivered (any written before the cancel came are deleted).
            if cancelled { await outputs.delete(ended?.payload.files ?? []) }
            let result = GenerationJobResult.decode(answer)
            // What the run worked out, within what the job holds (the answer is read back from the database).
            let worked = result?.chargedMicroCredits.map(Credits.init(microCredits:)) ?? job.cost
            let charged = min(max(worked, .zero), job.cost)
            (charge, releaseReason) = (charged, "")
            usage = GenerationUsage(
                keyID: job.keyID, model: job.model, dialect: job.dialect, status: cancelled ? 499 : 200, cost: charged, held: job.cost,
                duration: duration, requestID: requestID, upstream: result?.upstream)
        case .failed(let message):
            // Removed from the queue, or stopped between steps on a local worker: nothing delivered,
            // nothing charged. Nothing may be served either: an image a run taken back had stored
            // under the job's names (the client has them) goes with the job.
            await outputs.delete(ended?.payload.files ?? [])
            (charge, releaseReason) = (nil, cancelled ? JobRecord.cancelledError : message)
            usage = GenerationUsage(
                keyID: job.keyID, model: job.model, dialect: job.dialect, status: cancelled ? 499 : 500, cost: .zero, held: job.cost,
                duration: duration, requestID: requestID)
        }
        let webhook = webhook(job, ended)
        do {
            let settlement = JobSettlement(
                jobID: job.id, hold: job.hold, charge: charge, releaseReason: releaseReason,
                usage: UsageEvent(usage, at: clock.millisecondsNow), webhook: webhook)
            if try await store.settleJob(settlement) {
                await credits.settled(usage, charged: charge != nil)
                if webhook != nil { webhooks?.dispatcher.wake() }
            }
        } catch {
            // Still unsettled: the upkeep settles it at its next round, until the store takes it.
            logger.error("job not settled; the upkeep tries again", metadata: ["job": "\(job.id)", "error": "\(error)"])
        }
        completions.finished(job.id)
    }

    /// Deletes the images a run stored for a job that failed without it: the failure's settle
    /// deleted what was there when it ran.
    public func discard(_ job: JobRecord) async {
        await outputs.delete(GenerationJobPayload.decode(job.payload)?.files ?? [])
    }

    /// A job with a `webhook` gets the body its dialect renders for its end POSTed there (only
    /// ModelsLab's requests carry one), queued with its settle.
    private func webhook(_ job: JobRecord, _ ended: GenerationJob?) -> NewWebhook? {
        guard let webhooks, let ended, let url = ended.payload.webhook else { return nil }
        return NewWebhook(keyID: job.keyID, jobID: job.id, url: url, body: webhooks.body.webhookBody(ended))
    }
}

/// What a dialect POSTs to a job's webhook when the job ends.
public protocol JobWebhookRenderer: Sendable {
    func webhookBody(_ job: GenerationJob) -> [UInt8]
}
