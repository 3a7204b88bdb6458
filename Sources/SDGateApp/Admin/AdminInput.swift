import Foundation
import GenerationCore
import Ledger

/// The admin API's request bodies, read into values whose every number lies in its range: the one
/// place an admin's input is checked, before any arithmetic on it or any write. A refusal names the
/// field: `credits: expected ...`.
enum AdminInput {
    struct Problem: Error, Equatable {
        let message: String
    }

    /// `POST /admin/keys`.
    struct NewKey: Equatable {
        var name: String
        var credits: Credits?
        var models: [String]?
        var rateLimitPerMinute: Int?
        var lifetimeDays: Int?
        /// The team's id or name.
        var team: String?
    }

    /// `POST /admin/teams`.
    struct NewTeam: Equatable {
        var name: String
        var credits: Credits?
    }

    /// `POST .../credits`: a top-up, or a deduction when negative.
    struct Adjustment: Equatable {
        var amount: Credits
        var reason: String
    }

    /// A limit in `PATCH /admin/keys/{id}`: an absent field keeps the limit, `null` removes it.
    enum Change<Value: Equatable>: Equatable {
        case keep
        case remove
        case set(Value)

        func applied(to current: Value?) -> Value? {
            switch self {
            case .keep: current
            case .remove: nil
            case .set(let value): value
            }
        }
    }

    /// `PATCH /admin/keys/{id}`.
    struct Limits: Equatable {
        var models: Change<[String]>
        var rateLimitPerMinute: Change<Int>
        var lifetimeDays: Change<Int>
    }

    static func newKey(_ body: [UInt8]) -> Result<NewKey, Problem> {
        Result { () throws(Problem) in
            let fields = try object(
                body,
                expected: #"{"name": ..., "credits": "10", "models": [...], "rate_limit_per_minute": n, "expires_in_days": n, "team": id or name}"#)
            return NewKey(
                name: try name(fields),
                credits: try credits(fields["credits"], field: "credits", allowNegative: false),
                models: try models(fields["models"]),
                rateLimitPerMinute: try wholeNumber(fields["rate_limit_per_minute"], field: "rate_limit_per_minute", in: KeyLimits.requestsPerMinute),
                lifetimeDays: try wholeNumber(fields["expires_in_days"], field: "expires_in_days", in: KeyLimits.lifetimeDays),
                team: try text(fields["team"], field: "team"))
        }
    }

    static func newTeam(_ body: [UInt8]) -> Result<NewTeam, Problem> {
        Result { () throws(Problem) in
            let fields = try object(body, expected: #"{"name": ..., "credits": "100"}"#)
            return NewTeam(name: try name(fields), credits: try credits(fields["credits"], field: "credits", allowNegative: false))
        }
    }

    static func adjustment(_ body: [UInt8]) -> Result<Adjustment, Problem> {
        Result { () throws(Problem) in
            let fields = try object(body, expected: #"{"amount": "5" (negative to deduct), "reason": "..."}"#)
            guard let amount = try credits(fields["amount"], field: "amount", allowNegative: true), amount != .zero else {
                throw Problem(message: "amount: expected a decimal amount other than zero, such as \"5\" or \"-2.5\"")
            }
            guard let reason = try text(fields["reason"], field: "reason"), !reason.isEmpty else {
                throw Problem(message: "reason: expected text saying why the credits move")
            }
            return Adjustment(amount: amount, reason: reason)
        }
    }

    static func limits(_ body: [UInt8]) -> Result<Limits, Problem> {
        Result { () throws(Problem) in
            let fields = try object(body, expected: #"{"models": [...], "rate_limit_per_minute": n, "expires_in_days": n}; null removes a limit"#)
            func change<Value>(_ field: String, _ read: (JSONValue) throws(Problem) -> Value?) throws(Problem) -> Change<Value> {
                switch fields[field] {
                case nil: return .keep
                case .null?: return .remove
                case let value?: return try read(value).map(Change.set) ?? .remove
                }
            }
            return Limits(
                models: try change("models") { value throws(Problem) in try models(value) },
                rateLimitPerMinute: try change("rate_limit_per_minute") { value throws(Problem) in
                    try wholeNumber(value, field: "rate_limit_per_minute", in: KeyLimits.requestsPerMinute)
                },
                lifetimeDays: try change("expires_in_days") { value throws(Problem) in
                    try wholeNumber(value, field: "expires_in_days", in: KeyLimits.lifetimeDays)
                })
        }
    }

    /// `PUT .../budget`: `{"per": "day", "amount": "10", "time_zone": "Europe/Paris"}`, or
    /// `{"per": "day", "amount": "10", "rolling": true}` for the last 24 hours before each request.
    static func budget(_ body: [UInt8]) -> Result<PeriodBudget, Problem> {
        Result { () throws(Problem) in
            let fields = try object(
                body, expected: #"{"per": "day" | "week" | "month", "amount": "10", "time_zone": "Europe/Paris" (default UTC), "rolling": false}"#)
            guard let per = try text(fields["per"], field: "per").flatMap(PeriodBudget.Period.init(rawValue:)) else {
                throw Problem(message: "per: expected \"day\", \"week\" or \"month\"")
            }
            guard let amount = try credits(fields["amount"], field: "amount", allowNegative: false), amount > .zero else {
                throw Problem(message: "amount: expected a positive decimal amount of credits per \(per.rawValue), such as \"10\"")
            }
            let rolling: Bool
            switch fields["rolling"] {
            case nil, .null?: rolling = false
            case .bool(let value)?: rolling = value
            default: throw Problem(message: "rolling: expected true (the last 24 hours, 7 or 30 days) or false (calendar periods)")
            }
            let timeZone = try text(fields["time_zone"], field: "time_zone")
            if rolling && timeZone != nil { throw Problem(message: "time_zone: a rolling budget has no time zone; leave it out") }
            switch PeriodBudget.checked(period: per, amount: amount, timeZone: timeZone ?? "UTC", rolling: rolling) {
            case .success(let budget): return budget
            // The amount is in range: what is refused is the time zone.
            case .failure(let problem): throw Problem(message: "time_zone: " + problem.message)
            }
        }
    }

    // MARK: Fields

    private static func object(_ body: [UInt8], expected: String) throws(Problem) -> [String: JSONValue] {
        guard let fields = try? JSONDecoder().decode([String: JSONValue].self, from: Data(body)) else {
            throw Problem(message: "expected a JSON object: \(expected)")
        }
        return fields
    }

    private static func name(_ fields: [String: JSONValue]) throws(Problem) -> String {
        guard let name = try text(fields["name"], field: "name"), !name.isEmpty else { throw Problem(message: "name: expected a name") }
        return name
    }

    private static func text(_ value: JSONValue?, field: String) throws(Problem) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)? where text.utf8.count <= KeyLimits.maxTextLength: return text
        case .string?: throw Problem(message: "\(field): expected at most \(KeyLimits.maxTextLength) bytes of text")
        case .some: throw Problem(message: "\(field): expected text")
        }
    }

    private static func credits(_ value: JSONValue?, field: String, allowNegative: Bool) throws(Problem) -> Credits? {
        guard let text = try text(value, field: field) else { return nil }
        guard let credits = Credits(decimal: text), allowNegative || credits >= .zero else {
            let sign = allowNegative ? "" : "positive "
            throw Problem(
                message:
                    "\(field): expected a \(sign)decimal amount with at most six decimals and at most \(Credits.maximum) credits, such as \"10\" or \"0.5\""
            )
        }
        return credits
    }

    private static func wholeNumber(_ value: JSONValue?, field: String, in range: ClosedRange<Int>) throws(Problem) -> Int? {
        switch value {
        case nil, .null?: return nil
        case .integer(let number)? where Int64(range.lowerBound)...Int64(range.upperBound) ~= number: return Int(number)
        default: throw Problem(message: "\(field): expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    /// At most this many models in an allow-list.
    static let maxModels = 1000

    private static func models(_ value: JSONValue?) throws(Problem) -> [String]? {
        let problem = Problem(message: "models: expected a list of at most \(maxModels) model names (without commas), or null")
        switch value {
        case nil, .null?: return nil
        case .array(let items)? where items.count <= maxModels:
            var names: [String] = []
            for item in items {
                // The list is stored comma-separated: a comma in a name would make two of it.
                guard case .string(let name) = item, !name.isEmpty, name.utf8.count <= KeyLimits.maxTextLength, !name.contains(",") else {
                    throw problem
                }
                names.append(name)
            }
            return names
        default: throw problem
        }
    }
}
