public import GenerationCore
import Logging
import PostgresNIO
import Synchronization

/// Keys' request rates in PostgreSQL, shared by every gateway on the database (`RateCell`).
extension PostgresLedger: RateLimitStore {
    /// Unlogged: a transaction that writes only such a table does not wait for the write-ahead log
    /// to reach the disk, which made the statement cost a commit's fsync (about 9 ms against 0.6 ms
    /// on the test machine). The price: a crash of the database empties the table (every key starts
    /// again with its whole burst), and a standby does not have it. No reference to `api_key`: the
    /// row is written on the hot path. Its updates change no indexed column, so they stay on the
    /// row's page (HOT), which the fill factor leaves room for.
    static let rateLimitSchema: [PostgresQuery] = [
        "CREATE UNLOGGED TABLE rate_limit (key_id TEXT PRIMARY KEY, tat BIGINT NOT NULL, allowed BOOLEAN NOT NULL) WITH (fillfactor = 50)"
    ]

    /// Concurrent requests of limited keys go to the database together (`PostgresBatcher`), as the
    /// reserves do: a request's check would otherwise cost a round trip of its own, and take a
    /// connection from the pool that the reserves and settles need.
    public func takeRequest(keyID: String, perMinute: Int, now: Int64) async throws(LedgerError) -> RateDecision {
        guard let decision = try await rates.submit(RateRequest(keyID: keyID, cell: RateCell(perMinute: perMinute), now: now)) else {
            throw .storage("the rate limit statement returned no row")
        }
        return decision
    }

    /// Decides a batch: its keys at once (`BatchRateStatement`), then each key's repeats one after
    /// the other with `RateStatement`, which see the row the batch left; every request alone if
    /// the batch statement failed.
    static func takeRequests(
        _ requests: [RateRequest], client: PostgresClient, logger: Logger, batches: StatementCount
    ) async -> [Result<RateDecision?, LedgerError>] {
        await answer(
            requests, id: \.keyID, logger: logger,
            all: { batch in
                let byKey = Dictionary(batch.map { ($0.keyID, $0) }, uniquingKeysWith: { first, _ in first })
                var decided: [String: RateDecision] = [:]
                for try await (keyID, tat, allowed) in try await client.execute(BatchRateStatement(requests: batch), logger: logger) {
                    guard let request = byKey[keyID] else { continue }
                    decided[keyID] = request.cell.decision(tat: tat, allowed: allowed, now: request.now)
                }
                batches.add()
                return decided
            },
            one: { request in
                let statement = RateStatement(
                    keyID: request.keyID, now: request.now, interval: request.cell.interval, burst: request.cell.burst)
                return try await first(client.execute(statement, logger: logger)).map { tat, allowed in
                    request.cell.decision(tat: tat, allowed: allowed, now: request.now)
                }
            })
    }
}

/// A limited key's request waiting for its batch.
struct RateRequest: Sendable {
    let keyID: String
    let cell: RateCell
    /// Microseconds since 1970, the gateway's clock when the request came.
    let now: Int64
}

/// How many statements of a kind have run, so that the tests can see which requests went
/// together and which fell back to their single statement.
final class StatementCount: Sendable {
    private let value = Atomic<Int>(0)
    func add() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// One statement decides and records: the insert or the update holds the key's row lock, so
/// concurrent requests from any replica are decided one after the other on the newest `tat`. A
/// refused request rewrites the row unchanged but for `allowed`, so that the statement always
/// returns the row it decided on.
struct RateStatement: PostgresPreparedStatement {
    static let sql = """
        INSERT INTO rate_limit AS r (key_id, tat, allowed) VALUES ($1, $2::bigint + $3::bigint, TRUE)
        ON CONFLICT (key_id) DO UPDATE SET
            allowed = GREATEST(r.tat, $2::bigint) + $3::bigint - $2::bigint <= $4::bigint,
            tat = CASE WHEN GREATEST(r.tat, $2::bigint) + $3::bigint - $2::bigint <= $4::bigint
                THEN GREATEST(r.tat, $2::bigint) + $3::bigint ELSE r.tat END
        RETURNING tat, allowed
        """
    typealias Row = (Int64, Bool)

    let keyID: String
    let now: Int64
    let interval: Int64
    let burst: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(keyID)
        bindings.append(now)
        bindings.append(interval)
        bindings.append(burst)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// `RateStatement` for a batch of distinct keys, each with its own time, interval and burst: an
/// insert may not touch one row twice, so a key's repeats are left to `RateStatement`. The rows
/// are locked in key order, so that two replicas' batches cannot deadlock (a single statement
/// locks one row). The update takes its request's numbers from the batch by key, as the insert's
/// `excluded` row carries only the table's columns.
struct BatchRateStatement: PostgresPreparedStatement {
    static let sql = """
        WITH request AS (
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS q(key_id, at, step, burst)
        )
        INSERT INTO rate_limit AS r (key_id, tat, allowed)
        SELECT key_id, at + step, TRUE FROM request ORDER BY key_id
        ON CONFLICT (key_id) DO UPDATE SET (allowed, tat) = (
            SELECT d.next - q.at <= q.burst, CASE WHEN d.next - q.at <= q.burst THEN d.next ELSE r.tat END
            FROM request q CROSS JOIN LATERAL (SELECT GREATEST(r.tat, q.at) + q.step AS next) d
            WHERE q.key_id = r.key_id
        )
        RETURNING key_id, tat, allowed
        """
    /// A key, then its `tat` and whether its request was allowed.
    typealias Row = (String, Int64, Bool)

    /// Distinct keys.
    let requests: [RateRequest]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(requests.map(\.keyID))
        bindings.append(requests.map(\.now))
        bindings.append(requests.map(\.cell.interval))
        bindings.append(requests.map(\.cell.burst))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
