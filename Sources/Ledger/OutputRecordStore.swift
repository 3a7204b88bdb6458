import Synchronization

/// A database that keeps generated images for every gateway using it, by the unguessable names the
/// answers link to (PostgreSQL). An image is written once (again, whole, if its job runs again) and
/// read whole: an image is a few megabytes, as a file of the file store is.
public protocol OutputRecordStore: Sendable {
    /// Keeps `bytes` under `name`, replacing what was kept under it.
    func saveOutput(named name: String, bytes: [UInt8], at: Timestamp) async throws(LedgerError)
    /// The image kept under `name` and when it was kept; nil for a name never kept or swept.
    func output(named name: String) async throws(LedgerError) -> (bytes: [UInt8], createdAt: Timestamp)?
    /// Forgets the images kept before `cutoff`; returns how many.
    func purgeOutputs(createdBefore cutoff: Timestamp) async throws(LedgerError) -> Int
}

/// The in-memory twin of the database's output table.
public final class InMemoryOutputRecords: OutputRecordStore {
    private let records = Mutex<[String: (bytes: [UInt8], createdAt: Timestamp)]>([:])

    public init() {}

    public func saveOutput(named name: String, bytes: [UInt8], at: Timestamp) {
        records.withLock { $0[name] = (bytes, at) }
    }

    public func output(named name: String) -> (bytes: [UInt8], createdAt: Timestamp)? {
        records.withLock { $0[name] }
    }

    public func purgeOutputs(createdBefore cutoff: Timestamp) -> Int {
        records.withLock { records in
            let old = records.filter { $0.value.createdAt < cutoff }.map(\.key)
            for name in old { records[name] = nil }
            return old.count
        }
    }
}
