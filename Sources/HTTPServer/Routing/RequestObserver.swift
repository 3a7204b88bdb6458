/// What a `Router` tells of every request it answers, refused at its head or answered by a
/// handler: for access logs and metrics. `route` is the pattern matched (`unmatched` for none),
/// never the raw path, which can carry ids; nothing of headers or bodies, where secrets travel.
public protocol RequestObserver: Sendable {
    func answered(_ method: HTTPMethod, route: String, status: HTTPStatus, duration: Duration, requestID: String)
}

/// Request ids: 16 random hex digits, enough to be unique in any log a team keeps.
enum RequestID {
    static func make() -> String {
        let value = UInt64.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
