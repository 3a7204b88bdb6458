/// Decides who may use the gateway. The credit ledger implements it; until a ledger is configured,
/// `NoKeys` refuses every key.
public protocol AccessGate: Sendable {
    /// The key's identity if the key is known, unrevoked and unexpired.
    func authenticate(apiKey: String) async -> AuthenticatedKey?
}

public struct AuthenticatedKey: Sendable, Equatable {
    /// A stable, non-secret id for logs and usage (never the key itself).
    public let id: String

    public init(id: String) {
        self.id = id
    }
}

/// Refuses every key: the gate of a gateway that has no keys yet.
public struct NoKeys: AccessGate {
    public init() {}

    public func authenticate(apiKey: String) async -> AuthenticatedKey? { nil }
}
