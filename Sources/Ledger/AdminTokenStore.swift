/// The gateway's own settings kept with the ledger.
public protocol AdminTokenStore: Sendable {
    /// The SHA-256 of the admin token the gateway generated on its first start, if it did.
    func storedAdminTokenHash() async throws(LedgerError) -> [UInt8]?
    /// Stores the hash of a generated admin token, unless one is stored already; true if stored.
    func storeAdminTokenHash(_ hash: [UInt8]) async throws(LedgerError) -> Bool
}
