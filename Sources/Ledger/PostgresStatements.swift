import PostgresNIO

// The hot path of every generation request, as prepared statements: PostgreSQL parses and plans
// each once per connection instead of once per request.

/// Holds an amount of a key's credits and, for a member of a team, of the team's, in one
/// statement. `member` locks the key's balance row and reads it afresh (two requests can never
/// both take the last credits); the team's budget is held only if the key's suffices, the key's
/// only if the team's was held, and the hold is recorded only if both were. Locks are taken key
/// first, then team, as everywhere, so replicas cannot deadlock.
struct ReserveStatement: PostgresPreparedStatement {
    static let sql = """
        WITH member AS (
            SELECT b.key_id, b.balance - b.held AS available, k.team_id
            FROM balance b JOIN api_key k ON k.id = b.key_id WHERE b.key_id = $1 FOR UPDATE OF b
        ), team_reserved AS (
            UPDATE team SET held = team.held + $2 FROM member
            WHERE team.id = member.team_id AND member.available >= $2 AND team.balance - team.held >= $2
            RETURNING team.balance - team.held AS available
        ), reserved AS (
            UPDATE balance SET held = balance.held + $2 FROM member
            WHERE balance.key_id = member.key_id AND member.available >= $2
                  AND (member.team_id IS NULL OR EXISTS (SELECT 1 FROM team_reserved))
            RETURNING balance.balance - balance.held AS available, member.team_id
        ), recorded AS (
            INSERT INTO hold (id, key_id, team_id, amount, state, expires_at, created_at)
            SELECT $3, $1, team_id, $2, 'open', $4, $5 FROM reserved
        )
        SELECT available, (SELECT available FROM team_reserved) FROM reserved
        """
    /// The key's available credits after the hold, and its team's.
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
/// settle once across replicas); the key's and the team's balances and the post entries follow
/// from that row alone.
struct SettleStatement: PostgresPreparedStatement {
    static let sql = """
        WITH settled AS (
            UPDATE hold SET state = $1, charged = $2, reason = $3, settled_at = $4
            WHERE id = $5 AND state = 'open' AND $2 BETWEEN 0 AND amount
            RETURNING key_id, team_id, amount
        ), balanced AS (
            UPDATE balance SET held = held - settled.amount, balance = balance - $2
            FROM settled WHERE balance.key_id = settled.key_id
            RETURNING balance.balance, balance.held
        ), team_balanced AS (
            UPDATE team SET held = team.held - settled.amount, balance = team.balance - $2
            FROM settled WHERE team.id = settled.team_id
            RETURNING team.balance - team.held AS available
        ), posted AS (
            INSERT INTO entry (key_id, kind, amount, hold_id, reason, created_at)
            SELECT key_id, 'post', -$2, $5, $3, $4 FROM settled WHERE $2 > 0
        ), team_posted AS (
            INSERT INTO team_entry (team_id, kind, amount, hold_id, reason, created_at)
            SELECT team_id, 'post', -$2, $5, $3, $4 FROM settled WHERE team_id IS NOT NULL AND $2 > 0
        )
        SELECT balance, held, (SELECT available FROM team_balanced) FROM balanced
        """
    /// The key's balance and held credits after settling, and its team's available credits.
    typealias Row = (Int64, Int64, Int64?)

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
