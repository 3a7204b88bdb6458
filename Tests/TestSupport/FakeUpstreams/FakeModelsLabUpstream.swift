import Foundation
import HTTPServer
import Synchronization

/// The StableDiffusionAPI / ModelsLab v3 API as the contract describes it: the key in the body,
/// every application-level answer an HTTP 200 with a `status`; a generation answers `processing`
/// with an `id` and `fetch_result`, and `POST /api/v3/fetch/{id}` answers `processing` for
/// `pollsBeforeSuccess` fetches, then `success` with `output` URLs served by the fake itself.
package final class FakeModelsLabUpstream: FakeUpstream, @unchecked Sendable {
    private struct Job {
        var samples: Int
        var width: Int
        var height: Int
        var seed: UInt64
        var polls = 0
    }

    /// The step after which the fake stops listening (its port refuses connections from then on):
    /// an upstream that goes down in the middle of a generation it accepted.
    package enum Step: Sendable {
        /// Answering `processing` to the generation.
        case accepting
        /// Answering `success` to a fetch, before its images are downloaded.
        case finishing
    }

    package var goesDownAfter: Step? {
        get { down.withLock { $0 } }
        set { down.withLock { $0 = newValue } }
    }
    private let down = Mutex<Step?>(nil)

    private let jobs = Mutex<[Int: Job]>([:])
    private let pollsBeforeSuccess: Int
    /// The host its output URLs name: its own by default; another (a CDN, or somewhere a
    /// compromised upstream points) to test what the gateway fetches.
    private let outputHost: String

    package init(key: String = "ml_team_key_0123456789", pollsBeforeSuccess: Int = 1, outputHost: String = "127.0.0.1") throws {
        self.pollsBeforeSuccess = pollsBeforeSuccess
        self.outputHost = outputHost
        super.init(acceptingKey: key)
        var router = Router()
        for endpoint in ["/api/v3/img2img", "/api/v3/text2img"] {
            router.post(endpoint, maxBodyBytes: 64 << 20) { request, _ in await self.generate(request) }
        }
        router.post("/api/v3/fetch/{id}") { request, parameters in await self.fetch(request, id: parameters["id"] ?? "") }
        router.get("/generations/{file}") { request, parameters in await self.image(request, file: parameters["file"] ?? "") }
        try start(router)
    }

    private func generate(_ request: HTTPRequest) async -> HTTPResponse {
        if let answer = await intercept(request) { return answer }
        let body = ((try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any]) ?? [:]
        if let refused = refusedKeyOrAccount(body) { return refused }
        guard body["prompt"] is String else {
            return Self.json(["status": "error", "message": ["prompt": ["The prompt field is required."]]])
        }
        let job = Job(
            samples: images(for: Int(Self.number(body["samples"]) ?? 1)), width: Int(Self.number(body["width"]) ?? 512),
            height: Int(Self.number(body["height"]) ?? 512), seed: Self.number(body["seed"]).map { UInt64($0) } ?? 1_793_745_243)
        let id = jobs.withLock { jobs in
            let id = 10_684_517 + jobs.count
            jobs[id] = job
            return id
        }
        if goesDownAfter == .accepting { await goDown() }
        return processing(id)
    }

    private func fetch(_ request: HTTPRequest, id: String) async -> HTTPResponse {
        if let answer = await intercept(request) { return answer }
        let body = ((try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any]) ?? [:]
        if let refused = refusedKeyOrAccount(body) { return refused }
        guard let number = Int(id),
            let job = jobs.withLock({ jobs -> Job? in
                jobs[number]?.polls += 1
                return jobs[number]
            })
        else {
            return Self.json(["status": "error", "message": "Request not found"])
        }
        guard job.polls > pollsBeforeSuccess else { return processing(number) }
        if goesDownAfter == .finishing { await goDown() }
        return Self.json([
            "status": "success", "generationTime": 0.92, "id": number,
            "output": (0..<job.samples).map { "http://\(outputHost):\(port)/generations/\(number)-\($0).png" },
            "meta": ["W": job.width, "H": job.height, "seed": job.seed, "n_samples": job.samples],
        ])
    }

    private func image(_ request: HTTPRequest, file: String) async -> HTTPResponse {
        if let answer = await intercept(request) { return answer }
        guard let number = Int(file.prefix { $0.isNumber }), let job = jobs.withLock({ $0[number] }) else {
            return .text(.notFound, "no such file")
        }
        return HTTPResponse(status: .ok, headers: ["Content-Type": "image/png"], bytes: TestImages.png(width: job.width, height: job.height))
    }

    private func processing(_ id: Int) -> HTTPResponse {
        Self.json([
            "status": "processing", "tip": "for faster speed, keep resolution upto 512x512", "eta": 0.05,
            "messege": "Try to fetch request after given estimated time", "fetch_result": "\(baseURL)/api/v3/fetch/\(id)",
            "id": id, "output": [] as [String], "future_links": ["\(baseURL)/generations/\(id)-0.png"],
        ])
    }

    /// The legacy v3 error bodies: HTTP 200, `status: error`, the misspelled `messege` beside `message`.
    private func refusedKeyOrAccount(_ body: [String: Any]) -> HTTPResponse? {
        if body["key"] as? String != key || refusal == .rejectKey {
            return Self.json([
                "status": "error", "message": "Invalid Api Key", "messege": "Invalid Api Key",
                "tip": "1. Make sure you are passing Content-Type: application/json in header. 4. Make sure you have valid API key.",
            ])
        }
        switch refusal {
        case .outOfCredits:
            return Self.json(["status": "error", "message": "Insufficient credits. Please add more credits to continue."])
        case .rateLimited:
            return Self.json([
                "status": "error", "messege": "Rate limit exceeded",
                "tips": "you are sending same request multiple times, spam filter is enabled, please wait for 30 seconds and try again",
            ])
        default:
            return nil
        }
    }
}
