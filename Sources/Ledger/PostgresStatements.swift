import PostgresNIO

// The hot path of every generation request, as prepared statements: PostgreSQL parses and plans
// each once per connection instead of once per request.

/// Holds an amount of a key's credits and, for a member of a team, of the team's, in one
/// statement, and counts it in their periodic budgets. `member` locks the key's balance row and
/// reads it afresh (two requests can never both take the last credits, nor the last of a period's
/// budget), and finds nothing for a revoked or expired key. The team's budget is held only if the
/// key's suffices, the key's only if the team's was held, and the hold is recorded only if both
/// were. A period's count starts anew when its period has turned. Locks are taken key first, then
/// team, as everywhere, so replicas cannot deadlock.
struct ReserveStatement: PostgresPreparedStatement {
    static let sql = """
        WITH member AS (
            SELECT b.key_id, b.balance - b.held AS available, k.team_id, b.budget_amount,
                   \(PostgresBudgetSQL.period("b", now: "$5")) AS period, \(PostgresBudgetSQL.spent("b", now: "$5")) AS spent
            FROM balance b JOIN api_key k ON k.id = b.key_id
            WHERE b.key_id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $5) AND NOT b.budget_rolling
            FOR UPDATE OF b
        ), allowed AS (
            SELECT * FROM member WHERE available >= $2 AND (budget_amount IS NULL OR spent <= budget_amount - $2)
        ), team_reserved AS (
            UPDATE team SET held = team.held + $2,
                period_start = CASE WHEN team.budget_amount IS NULL THEN team.period_start ELSE \(PostgresBudgetSQL.period("team", now: "$5")) END,
                period_spent = CASE WHEN team.budget_amount IS NULL THEN team.period_spent ELSE \(PostgresBudgetSQL.spent("team", now: "$5")) + $2 END
            FROM allowed WHERE team.id = allowed.team_id AND team.balance - team.held >= $2 AND NOT team.budget_rolling
                  AND (team.budget_amount IS NULL OR \(PostgresBudgetSQL.spent("team", now: "$5")) <= team.budget_amount - $2)
            RETURNING LEAST(team.balance - team.held, team.budget_amount - team.period_spent) AS available,
                      CASE WHEN team.budget_amount IS NOT NULL THEN team.period_start END AS period
        ), reserved AS (
            UPDATE balance SET held = balance.held + $2,
                period_start = CASE WHEN allowed.budget_amount IS NULL THEN balance.period_start ELSE allowed.period END,
                period_spent = CASE WHEN allowed.budget_amount IS NULL THEN balance.period_spent ELSE allowed.spent + $2 END
            FROM allowed WHERE balance.key_id = allowed.key_id
                  AND (allowed.team_id IS NULL OR EXISTS (SELECT 1 FROM team_reserved))
            RETURNING LEAST(balance.balance - balance.held, balance.budget_amount - balance.period_spent) AS available, allowed.team_id,
                      CASE WHEN allowed.budget_amount IS NOT NULL THEN allowed.period END AS period
        ), recorded AS (
            INSERT INTO hold (id, key_id, team_id, amount, state, expires_at, created_at, key_period, team_period)
            SELECT $3, $1, team_id, $2, 'open', $4, $5, period, (SELECT period FROM team_reserved) FROM reserved
        )
        SELECT available, (SELECT available FROM team_reserved) FROM reserved
        """
    /// What the key can still spend after the hold (its credits or what is left of its period's
    /// budget, the less), and its team's.
    typealias Row = (Int64, Int64?)

    let keyID: String
    let amount: Int64
    let holdID: String
    let expiresAt: Int64
    let now: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        bindings.append(keyID)
        bindings.append(amount)
        bindings.append(holdID)
        bindings.append(expiresAt)
        bindings.append(now)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// Settles an open hold: posts a charge (at most the hold) or voids it, in one statement. The hold
/// moves from open to settled only if it is open and the charge fits (the row lock makes a hold
/// settle once across replicas); the key's and the team's balances, the periods' counts and the
/// post entries follow from that row alone. A period's count changes only if it still counts the
/// hold's period.
struct SettleStatement: PostgresPreparedStatement {
    static let sql = """
        WITH settled AS (
            UPDATE hold SET state = $1, charged = $2, reason = $3, settled_at = $4
            WHERE id = $5 AND state = 'open' AND $2 BETWEEN 0 AND amount
            RETURNING key_id, team_id, amount, key_period, team_period
        ), balanced AS (
            UPDATE balance SET held = held - settled.amount, balance = balance - $2,
                period_spent = balance.period_spent + CASE WHEN balance.period_start = settled.key_period THEN $2 - settled.amount ELSE 0 END
            FROM settled WHERE balance.key_id = settled.key_id
            RETURNING balance.balance, balance.held, \(PostgresBudgetSQL.columns("balance", team: false, now: "$4", as: "k_"))
        ), team_balanced AS (
            UPDATE team SET held = team.held - settled.amount, balance = team.balance - $2,
                period_spent = team.period_spent + CASE WHEN team.period_start = settled.team_period THEN $2 - settled.amount ELSE 0 END
            FROM settled WHERE team.id = settled.team_id
            RETURNING team.balance - team.held AS available, \(PostgresBudgetSQL.columns("team", team: true, now: "$4", as: "t_"))
        ), posted AS (
            INSERT INTO entry (key_id, kind, amount, hold_id, reason, created_at)
            SELECT key_id, 'post', -$2, $5, $3, $4 FROM settled WHERE $2 > 0
        ), team_posted AS (
            INSERT INTO team_entry (team_id, kind, amount, hold_id, reason, created_at)
            SELECT team_id, 'post', -$2, $5, $3, $4 FROM settled WHERE team_id IS NOT NULL AND $2 > 0
        )
        SELECT b.balance, b.held, t.available, \(PostgresBudgetSQL.named("b", "k_")), \(PostgresBudgetSQL.named("t", "t_"))
        FROM balanced b LEFT JOIN team_balanced t ON true
        """
    /// The key's balance after settling, with its team's available credits and both budgets.
    typealias Row = BalanceRow

    let state: String
    let charge: Int64
    let reason: String
    let now: Int64
    let holdID: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        bindings.append(state)
        bindings.append(charge)
        bindings.append(reason)
        bindings.append(now)
        bindings.append(holdID)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

// The same two steps for a batch of requests (`PostgresBatcher`): one statement and one commit for
// many requests. Both lock every key's balance row in key order, then every team's row in id order,
// before changing anything; every other path locks a key before its team, so concurrent batches,
// single statements and replicas cannot deadlock. (Each lock step is forced to finish first by an
// uncorrelated subquery, which PostgreSQL evaluates once, before the rows that depend on it.)

/// Holds credits for a batch of requests. A request is held when its key's available credits, and
/// what is left of its periodic budget, cover it together with every earlier request of the batch
/// for that key, and its team's cover it with every earlier such request of the team. A request
/// that its key or its team could not cover even alone, before the batch, is refused here, with
/// what the key can spend after the batch (`Balance.spendable`): no order of the batch would have
/// held it. The rest (refused only for the batch's earlier requests, or under a rolling budget,
/// or of a key that cannot spend) are left for `ReserveStatement` to decide one by one, so that
/// every refusal is exact.
struct BatchReserveStatement: PostgresPreparedStatement {
    static let sql = """
        WITH request AS (
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[])
                WITH ORDINALITY AS r(key_id, amount, hold_id, expires_at, position)
        ), member AS (
            SELECT b.key_id, b.balance - b.held AS available, k.team_id, b.budget_amount,
                   \(PostgresBudgetSQL.period("b", now: "$5")) AS period, \(PostgresBudgetSQL.spent("b", now: "$5")) AS spent
            FROM balance b JOIN api_key k ON k.id = b.key_id
            WHERE b.key_id = ANY ((SELECT array_agg(DISTINCT key_id) FROM request)::text[])
                  AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $5) AND NOT b.budget_rolling
            ORDER BY b.key_id FOR UPDATE OF b
        ), team_locked AS (
            SELECT t.id, t.balance - t.held AS available, t.budget_amount, t.budget_rolling,
                   \(PostgresBudgetSQL.period("t", now: "$5")) AS period, \(PostgresBudgetSQL.spent("t", now: "$5")) AS spent
            FROM team t
            WHERE t.id = ANY ((SELECT array_agg(DISTINCT team_id) FROM member)::text[])
            ORDER BY t.id FOR NO KEY UPDATE
        ), within_key AS (
            SELECT r.*, m.team_id, CASE WHEN m.budget_amount IS NOT NULL THEN m.period END AS key_period FROM (
                SELECT r.*, SUM(r.amount) OVER (PARTITION BY r.key_id ORDER BY r.position) AS key_total FROM request r
            ) r JOIN member m USING (key_id)
            WHERE r.key_total <= m.available AND (m.budget_amount IS NULL OR r.key_total <= m.budget_amount - m.spent)
        ), accepted AS (
            SELECT w.*, CASE WHEN t.budget_amount IS NOT NULL THEN t.period END AS team_period FROM (
                SELECT w.*, SUM(w.amount) OVER (PARTITION BY w.team_id ORDER BY w.position) AS team_total FROM within_key w
            ) w LEFT JOIN team_locked t ON t.id = w.team_id
            WHERE w.team_id IS NULL
                  OR (NOT t.budget_rolling AND w.team_total <= t.available
                      AND (t.budget_amount IS NULL OR w.team_total <= t.budget_amount - t.spent))
        ), key_held AS (
            UPDATE balance b SET held = b.held + a.total,
                period_start = CASE WHEN m.budget_amount IS NULL THEN b.period_start ELSE m.period END,
                period_spent = CASE WHEN m.budget_amount IS NULL THEN b.period_spent ELSE m.spent + a.total END
            FROM (SELECT key_id, SUM(amount) AS total FROM accepted GROUP BY key_id) a JOIN member m USING (key_id)
            WHERE b.key_id = a.key_id AND (SELECT count(*) FROM team_locked) >= 0
            RETURNING b.key_id, b.balance - b.held AS credits_left, b.budget_amount - b.period_spent AS budget_left
        ), team_held AS (
            UPDATE team t SET held = t.held + a.total,
                period_start = CASE WHEN l.budget_amount IS NULL THEN t.period_start ELSE l.period END,
                period_spent = CASE WHEN l.budget_amount IS NULL THEN t.period_spent ELSE l.spent + a.total END
            FROM (SELECT team_id, SUM(amount) AS total FROM accepted WHERE team_id IS NOT NULL GROUP BY team_id) a
                JOIN team_locked l ON l.id = a.team_id
            WHERE t.id = a.team_id AND (SELECT count(*) FROM team_locked) >= 0
            RETURNING t.id, t.balance - t.held AS credits_left, t.budget_amount - t.period_spent AS budget_left
        ), recorded AS (
            INSERT INTO hold (id, key_id, team_id, amount, state, expires_at, created_at, key_period, team_period)
            SELECT hold_id, key_id, team_id, amount, 'open', expires_at, $5, key_period, team_period FROM accepted
        ), refused AS (
            SELECT r.hold_id, LEAST(
                    COALESCE(k.credits_left, m.available),
                    CASE WHEN m.budget_amount IS NOT NULL THEN GREATEST(COALESCE(k.budget_left, m.budget_amount - m.spent), 0) END,
                    COALESCE(h.credits_left, t.available),
                    CASE WHEN t.budget_amount IS NOT NULL THEN GREATEST(COALESCE(h.budget_left, t.budget_amount - t.spent), 0) END
                ) AS spendable
            FROM request r JOIN member m USING (key_id) LEFT JOIN team_locked t ON t.id = m.team_id
                LEFT JOIN key_held k ON k.key_id = r.key_id LEFT JOIN team_held h ON h.id = m.team_id
            WHERE (m.team_id IS NULL OR NOT t.budget_rolling)
                  AND (r.amount > m.available OR r.amount > m.budget_amount - m.spent
                       OR r.amount > t.available OR r.amount > t.budget_amount - t.spent)
        )
        SELECT a.hold_id, TRUE, LEAST(k.credits_left, k.budget_left), LEAST(t.credits_left, t.budget_left)
        FROM accepted a JOIN key_held k USING (key_id) LEFT JOIN team_held t ON t.id = a.team_id
        UNION ALL
        SELECT hold_id, FALSE, spendable, NULL FROM refused
        """
    /// A request's hold id; whether it was held; if so, its key's and team's available credits
    /// after the batch, else what its key can spend.
    typealias Row = (String, Bool, Int64, Int64?)

    let requests: [HoldRequest]
    let now: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        bindings.append(requests.map(\.keyID))
        bindings.append(requests.map(\.amount))
        bindings.append(requests.map(\.holdID))
        bindings.append(requests.map(\.expiresAt))
        bindings.append(now)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// Settles a batch of open holds, as `SettleStatement` does each. A hold left out of the answer
/// (settled already, unknown, a charge above its amount, or an expiry of a hold not overdue) is
/// left for `SettleStatement` to explain.
struct BatchSettleStatement: PostgresPreparedStatement {
    static let sql = """
        WITH request AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS r(hold_id, state, charge, reason)
        ), settled AS (
            UPDATE hold h SET state = r.state, charged = r.charge, reason = r.reason, settled_at = $5
            FROM request r WHERE h.id = r.hold_id AND h.state = 'open' AND r.charge BETWEEN 0 AND h.amount
                -- An expiry looks again, under the row's lock: a renewal since the reaper's look stands.
                AND (r.state <> 'expired' OR h.expires_at <= $5)
            RETURNING h.id, h.key_id, h.team_id, h.amount, r.charge, r.reason, h.key_period, h.team_period
        ), member AS (
            SELECT b.key_id, k.team_id FROM balance b JOIN api_key k ON k.id = b.key_id
            WHERE b.key_id = ANY ((SELECT array_agg(DISTINCT key_id) FROM settled)::text[])
            ORDER BY b.key_id FOR UPDATE OF b
        ), team_locked AS (
            SELECT t.id FROM team t
            WHERE t.id = ANY ((SELECT array_agg(DISTINCT team_id) FROM member)::text[])
            ORDER BY t.id FOR NO KEY UPDATE
        ), balanced AS (
            UPDATE balance b SET held = b.held - s.amount, balance = b.balance - s.charge,
                period_spent = b.period_spent
                    + COALESCE((SELECT SUM(x.charge - x.amount) FROM settled x WHERE x.key_id = b.key_id AND x.key_period = b.period_start), 0)
            FROM (SELECT key_id, SUM(amount) AS amount, SUM(charge) AS charge FROM settled GROUP BY key_id) s
            WHERE b.key_id = s.key_id AND (SELECT count(*) FROM team_locked) >= 0
            RETURNING b.key_id, b.balance, b.held, \(PostgresBudgetSQL.columns("b", team: false, now: "$5", as: "k_"))
        ), team_balanced AS (
            UPDATE team t SET held = t.held - s.amount, balance = t.balance - s.charge,
                period_spent = t.period_spent
                    + COALESCE((SELECT SUM(x.charge - x.amount) FROM settled x WHERE x.team_id = t.id AND x.team_period = t.period_start), 0)
            FROM (SELECT team_id, SUM(amount) AS amount, SUM(charge) AS charge FROM settled WHERE team_id IS NOT NULL GROUP BY team_id) s
            WHERE t.id = s.team_id AND (SELECT count(*) FROM team_locked) >= 0
            RETURNING t.id, t.balance - t.held AS available, \(PostgresBudgetSQL.columns("t", team: true, now: "$5", as: "t_"))
        ), posted AS (
            INSERT INTO entry (key_id, kind, amount, hold_id, reason, created_at)
            SELECT key_id, 'post', -charge, id, reason, $5 FROM settled WHERE charge > 0
        ), team_posted AS (
            INSERT INTO team_entry (team_id, kind, amount, hold_id, reason, created_at)
            SELECT team_id, 'post', -charge, id, reason, $5 FROM settled WHERE team_id IS NOT NULL AND charge > 0
        )
        SELECT s.id, b.balance, b.held, t.available, \(PostgresBudgetSQL.named("b", "k_")), \(PostgresBudgetSQL.named("t", "t_"))
        FROM settled s JOIN balanced b USING (key_id) LEFT JOIN team_balanced t ON t.id = s.team_id
        """
    /// A settled hold's id, then its key's balance after the batch (`BalanceRow`).
    typealias Row = (String, Int64, Int64, Int64?, String?, Int64?, String?, Int64?, Int64?, String?, Int64?, String?, Int64?, Int64?)

    let requests: [SettleRequest]
    let now: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        bindings.append(requests.map(\.holdID))
        bindings.append(requests.map(\.state))
        bindings.append(requests.map(\.charge))
        bindings.append(requests.map(\.reason))
        bindings.append(now)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
