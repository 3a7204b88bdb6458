public import GenerationCore
public import Jobs

extension Admission {
    /// Queues an admitted request as a job and returns it as queued; a job that is not queued
    /// releases its hold, and the refusal says why.
    public func enqueue(
        _ admitted: AdmittedRequest, as payload: GenerationJobPayload, dialect: String,
        on jobs: any GenerationJobs
    ) async throws(GatewayError) -> GenerationJob {
        let refusal: GatewayError
        switch await jobs.enqueue(payload, keyID: admitted.key.id, dialect: dialect, hold: admitted.hold, cost: admitted.cost) {
        case .success(let job): return job
        case .failure(.tooMany(let limit)): refusal = .tooManyJobs(limit: limit)
        case .failure(.failed): refusal = .notQueued
        }
        // Whether or not the client is still there (a cancelled task cannot reach PostgreSQL).
        _ = await uncancelled { [gate] in await gate.release(admitted.hold, reason: "the job was not queued") }
        throw refusal
    }

    /// The job `id` if `key` queued it through `dialect`.
    public func job(_ id: String, of key: AuthenticatedKey, dialect: String, on jobs: any GenerationJobs) async throws(GatewayError) -> GenerationJob
    {
        guard let job = await jobs.job(id, of: key.id, dialect: dialect) else { throw .jobNotFound }
        return job
    }
}
