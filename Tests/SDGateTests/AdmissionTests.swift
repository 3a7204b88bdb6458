import Foundation
import GenerationCore
import HTTPServer
import Ledger
import Logging
import Synchronization
import TestSupport
import Testing

@testable import GatewayAPI
@testable import SDGateApp

/// The admission pipeline on its own, over the real gate and the in-memory ledger: its steps refuse
/// in their order, a refusal holds nothing, and the one boundary meters every answer.
@Suite("Admission pipeline")
struct AdmissionTests {
    static let model = "sdxl1.0-txt2img"

    struct Fixture {
        let ledger = InMemoryLedger()
        let admission: Admission

        init() throws {
            let gate = LedgerGate(
                ledger: ledger, holdLifetime: .seconds(600), clock: SystemWallClock(), logger: Logger(label: "test"),
                metricsFactory: GatewayMetrics().factory)
            admission = Admission(
                catalog: try ModelCatalog.load(file: Repository.path("Config/models.yaml")), gate: gate,
                images: ImageLoader(fetcher: nil))
        }

        /// A key allowed `models`, funded with `credits`, and its secret.
        func key(models: [String]? = nil, credits: String) async throws -> (AuthenticatedKey, String) {
            let (key, secret) = try await ledger.createKey(NewKey(name: "member", models: models))
            if let amount = Credits(decimal: credits), amount > .zero { _ = try await ledger.adjust(.key(key.id), by: amount, reason: "test") }
            return (AuthenticatedKey(id: key.id, models: models), secret)
        }

        func call(_ key: AuthenticatedKey) -> Call {
            Call(key: key, model: AdmissionTests.model, dialect: "plain", requestID: "r", start: .now)
        }

        /// An application for the catalog model with `body`, noting whether its body was decoded.
        func application(_ body: [String: JSONValue], decoded: Flag? = nil) throws -> Admission.Application {
            let model = try #require(admission.catalog[AdmissionTests.model])
            return Admission.Application(model: model, randomSeed: 7) { () throws(GatewayError) in
                decoded?.raise()
                return body
            }
        }

        func admit(_ application: Admission.Application, for key: AuthenticatedKey) async -> Result<AdmittedRequest, GatewayError> {
            do throws(GatewayError) {
                return .success(try await admission.admit(application, for: call(key)))
            } catch {
                return .failure(error)
            }
        }

        /// What refusals must leave: the balance as funded, nothing held.
        func expectNothingMoved(_ key: AuthenticatedKey, balance: String) async throws {
            #expect(try await ledger.balance(of: .key(key.id)).balance == Credits(decimal: balance))
            #expect(try await ledger.openHolds().count == 0)
        }
    }

    @Test func aKeyOutsideItsAllowListIsRefusedBeforeItsBodyIsRead() async throws {
        let fixture = try Fixture()
        let (key, _) = try await fixture.key(models: ["sdxl-img2img"], credits: "1")
        let decoded = Flag()
        let result = await fixture.admit(try fixture.application(["prompt": JSONValue.string("x")], decoded: decoded), for: key)
        #expect(result.failure == GatewayError.modelNotAllowed(Self.model))
        #expect(!decoded.isRaised)
        try await fixture.expectNothingMoved(key, balance: "1")
    }

    @Test func badFieldsAreRefusedBeforeCreditsAreLookedAt() async throws {
        let fixture = try Fixture()
        let (key, _) = try await fixture.key(credits: "0")
        let result = await fixture.admit(try fixture.application(["prompt": .string("x"), "samples": .integer(999)]), for: key)
        guard case .invalidFields(let problems)? = result.failure else { Issue.record("\(result)"); return }
        #expect(problems.contains { $0.hasPrefix("samples:") })
        try await fixture.expectNothingMoved(key, balance: "0")
    }

    @Test func aKeyWithoutCreditsIsRefusedAndHoldsNothing() async throws {
        let fixture = try Fixture()
        let (key, _) = try await fixture.key(credits: "0.001")
        let result = await fixture.admit(try fixture.application(["prompt": .string("x")]), for: key)
        #expect(result.failure == GatewayError.insufficientCredits)
        try await fixture.expectNothingMoved(key, balance: "0.001")
    }

    @Test func anAdmittedRequestHoldsItsPriceForTheKey() async throws {
        let fixture = try Fixture()
        let (key, _) = try await fixture.key(credits: "1")
        let admitted = try await fixture.admit(try fixture.application(["prompt": .string("x"), "samples": .integer(2)]), for: key).get()
        #expect(admitted.generation.samples == 2)
        #expect(admitted.generation.requester == key.id)
        // At the model's default steps, two images cost twice the catalog's price of one.
        let perImage = try #require(fixture.admission.catalog[Self.model]).price.perImage
        #expect(admitted.cost == Credits(microCredits: 2 * perImage.microCredits))
        #expect(try await fixture.ledger.balance(of: .key(key.id)).held == admitted.cost)
        #expect(admitted.remaining == Credits(decimal: "1")! - admitted.cost)
    }

    /// The boundary: a refusal of a known key is rendered by the dialect, shows the key's credits and
    /// is recorded in the usage report under the refusal's status, with nothing charged.
    @Test func theBoundaryShowsCreditsAndRecordsEveryRefusal() async throws {
        let fixture = try Fixture()
        let (key, secret) = try await fixture.key(credits: "0.001")
        struct Renderer: DialectRenderer {
            func render(_ error: GatewayError) -> HTTPResponse { .json(.ok, Array(error.code.utf8)) }
        }
        let request = HTTPRequest(head: HTTPRequestHead(method: .post, target: "/x", headers: ["x-request-id": "req-1"]), body: [])
        let application = try fixture.application(["prompt": .string("x")])
        let response = await fixture.admission.serve(
            .success(secret), model: Self.model, request: request, renderer: Renderer(), dialect: "plain"
        ) { call throws(GatewayError) in
            _ = try await fixture.admission.admit(application, for: call)
            Issue.record("admitted without credits")
            return Outcome(response: .json(.ok, []))
        }
        #expect(response.text == "insufficient_credits")
        #expect(response.headers["x-remaining-credits"] == "0.001")
        let usage = try await fixture.ledger.usage(keyID: key.id, teamID: nil, from: 0, to: .max)
        #expect(usage.map(\.status) == [406])
        #expect(usage.map(\.cost) == [.zero])
        // Counted with the minute's other refusals of its key, model, dialect and status: no request named.
        #expect(usage.map(\.requests) == [1] && usage.map(\.counted) == [true] && usage.map(\.requestID) == [""])
        #expect(usage.map(\.dialect) == ["plain"], "the call's dialect, as the dialect named it")
        try await fixture.expectNothingMoved(key, balance: "0.001")
        let stranger = await fixture.admission.serve(
            .success("not-a-key"), model: Self.model, request: request, renderer: Renderer(), dialect: "plain"
        ) { _ in
            Issue.record("a stranger got past the boundary")
            return Outcome(response: .json(.ok, []))
        }
        #expect(stranger.text == "invalid_api_key")
        #expect(stranger.headers["x-remaining-credits"] == nil)
    }

    /// A client that leaves as its request's hold is made: the hold still backs the request's
    /// `Idempotency-Key` claim, or the claim would lapse while the work runs on, and a retry would
    /// run and be charged a second time. PostgreSQL's pool refuses a cancelled task a connection,
    /// and the claim was backed in the request's own task.
    @Test func aClientThatLeavesAsItsHoldIsMadeStillHasItsClaimBacked() async throws {
        /// `TestGate`, but the request's task is cancelled as its hold is made; notes whether the
        /// claim was backed in a cancelled task.
        final class ClientLeavesAtTheHold: AccessGate {
            let gate = TestGate()
            let backedCancelled = Mutex<[Bool]>([])
            func authenticate(apiKey: String) async -> AuthenticatedKey? { await gate.authenticate(apiKey: apiKey) }
            func remaining(for key: AuthenticatedKey) async -> Credits? { await gate.remaining(for: key) }
            func reserve(_ amount: Credits, for key: AuthenticatedKey, queuedUpTo queueTime: Duration) async -> CreditReservation {
                withUnsafeCurrentTask { $0?.cancel() }
                return await gate.reserve(amount, for: key, queuedUpTo: queueTime)
            }
            func backIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, with hold: CreditHold) async {
                backedCancelled.withLock { $0.append(Task.isCancelled) }
            }
            func settle(_ hold: CreditHold, charge: Credits) async -> Credits? { await gate.settle(hold, charge: charge) }
            func release(_ hold: CreditHold, reason: String) async -> Credits? { await gate.release(hold, reason: reason) }
            func recordUsage(_ usage: GenerationUsage) async {}
            func mayStillSpend(keyID: String) async -> Bool { true }
            func claimIdempotency(_ key: String, fingerprint: [UInt8], for apiKey: AuthenticatedKey) async -> IdempotencyOutcome {
                await gate.claimIdempotency(key, fingerprint: fingerprint, for: apiKey)
            }
            func completeIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey, answer: StoredAnswer) async {}
            func releaseIdempotency(_ ticket: IdempotencyTicket, for key: AuthenticatedKey) async {}
        }
        let gate = ClientLeavesAtTheHold()
        let admission = Admission(
            catalog: try ModelCatalog.load(file: Repository.path("Config/models.yaml")), gate: gate, images: ImageLoader(fetcher: nil))
        let model = try #require(admission.catalog[Self.model])
        let application = Admission.Application(model: model, randomSeed: 7) { () throws(GatewayError) in ["prompt": .string("x")] }
        let request = HTTPRequest(head: HTTPRequestHead(method: .post, target: "/x", headers: [:]), body: [])
        struct Renderer: DialectRenderer {
            func render(_ error: GatewayError) -> HTTPResponse { .json(.ok, Array(error.code.utf8)) }
        }
        _ = await admission.serve(
            .success(TestGate.key), model: Self.model, request: request, renderer: Renderer(), dialect: "plain",
            idempotency: IdempotencyClaim(key: "once", route: "POST /x", body: [])
        ) { call throws(GatewayError) in
            _ = try await admission.admit(application, for: call)
            return Outcome(response: .json(.ok, []))
        }
        #expect(gate.backedCancelled.withLock { $0 } == [false])
    }

    /// An upstream's `x-cost` that no call could cost is left out of the team's upstream spending;
    /// `inf` once made the total infinite for as long as the gateway ran.
    @Test func anUpstreamCostNoCallCouldCostIsNotCounted() async throws {
        let ledger = InMemoryLedger()
        let metrics = GatewayMetrics()
        let gate = LedgerGate(
            ledger: ledger, holdLifetime: .seconds(600), clock: SystemWallClock(), logger: Logger(label: "test"), metricsFactory: metrics.factory)
        let (key, _) = try await ledger.createKey(NewKey(name: "member"))
        for cost in ["0.25", "inf", "nan", "1e300", "-1", "0.5"] {
            await gate.recordUsage(
                GenerationUsage(
                    keyID: key.id, model: "m", dialect: "segmind", status: 502, cost: .zero, held: .zero, duration: .seconds(1), requestID: "r",
                    upstream: UpstreamReport(name: "segmind", cost: cost)))
        }
        let exposition = String(decoding: metrics.exposition(), as: UTF8.self)
        let line = exposition.split(separator: "\n").first { $0.hasPrefix("sdgate_upstream_cost_total{") }
        #expect(line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } == 0.75, "\(line ?? "none")")
    }

    /// A gate on a real SQLite file, a key with one credit, and half of it held.
    static func heldHalfCredit(_ name: String) async throws -> (
        path: String, ledger: SQLiteLedger, gate: LedgerGate, key: LedgerKey, hold: CreditHold
    ) {
        let path = Scratch.path(name, pathExtension: "sqlite").path
        let ledger = try SQLiteLedger(path: path)
        let gate = LedgerGate(
            ledger: ledger, holdLifetime: .seconds(600), clock: SystemWallClock(), logger: Logger(label: "test"),
            metricsFactory: GatewayMetrics().factory)
        let (key, _) = try await ledger.createKey(NewKey(name: "member"))
        _ = try await ledger.adjust(.key(key.id), by: try #require(Credits(decimal: "1")), reason: "test")
        guard
            case .held(let hold, _) = await gate.reserve(try #require(Credits(decimal: "0.5")), for: AuthenticatedKey(id: key.id), queuedUpTo: .zero)
        else { throw LedgerError.insufficientBalance }
        return (path, ledger, gate, key, hold)
    }

    /// A renewal the ledger could not make (here its `hold` table is out of reach for a moment)
    /// keeps the hold on the renewal schedule; only a ledger's answer that the hold is no longer
    /// open takes it off. One failed renewal once ended every renewal of the hold, which then
    /// expired under its running generation.
    @Test func aRenewalTheLedgerCouldNotMakeIsTriedAgain() async throws {
        let (path, _, gate, _, hold) = try await Self.heldHalfCredit("renewals")
        #expect(try await Command.run("sqlite3", [path, "ALTER TABLE hold RENAME TO hold_away"]).status == 0)
        #expect(await gate.renew(hold), "not known to be closed")
        #expect(try await Command.run("sqlite3", [path, "ALTER TABLE hold_away RENAME TO hold"]).status == 0)
        #expect(await gate.renew(hold))
        _ = await gate.release(hold, reason: "test")
        #expect(await gate.renew(hold) == false, "the ledger says it is closed")
    }

    /// A charge the ledger could not write (busy past its timeout, a connection reset) is made
    /// once it can: the image was delivered. One failed try left it unmade for good, the hold to
    /// expire, and the image free.
    @Test func aChargeTheLedgerCouldNotWriteIsMadeLater() async throws {
        let (path, ledger, gate, key, hold) = try await Self.heldHalfCredit("late-posts")
        let half = try #require(Credits(decimal: "0.5"))
        #expect(try await Command.run("sqlite3", [path, "ALTER TABLE usage_event RENAME TO usage_away"]).status == 0)
        let usage = GenerationUsage(
            keyID: key.id, model: "m", dialect: "segmind", status: 200, cost: half, held: half, duration: .seconds(1), requestID: "r")
        #expect(await gate.settle(hold, charge: half, recording: usage) == nil, "not written")
        #expect(try await ledger.balance(of: .key(key.id)) == Balance(balance: try #require(Credits(decimal: "1")), held: half))
        #expect(try await Command.run("sqlite3", [path, "ALTER TABLE usage_away RENAME TO usage_event"]).status == 0)

        #expect(await eventually(timeout: .seconds(30)) { (try? await ledger.balance(of: .key(key.id)))?.balance == half })
        #expect(try await ledger.balance(of: .key(key.id)).held == .zero)
        #expect(try await ledger.usage(keyID: key.id, teamID: nil, from: 0, to: .max).count == 1, "one usage event with the charge")
        #expect(try await ledger.verify() == [])
    }

}

final class Flag: Sendable {
    private let raised = Mutex(false)
    func raise() { raised.withLock { $0 = true } }
    func lower() { raised.withLock { $0 = false } }
    var isRaised: Bool { raised.withLock { $0 } }
}

extension HTTPResponse {
    var text: String? {
        if case .bytes(let bytes) = body { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
