import Synchronization

/// A database that keeps generated images for every gateway using it, by the unguessable names the
/// answers link to (PostgreSQL). An image is written once (again, whole, if its job runs again) and
/// read in pieces, so that a download holds a piece in memory, not the image.
public protocol OutputRecordStore: Sendable {
    /// Keeps `bytes` under `name`, replacing what was kept under it.
    func saveOutput(named name: String, bytes: [UInt8], at: Timestamp) async throws(LedgerError)
    /// The length of the image kept under `name`, when it was kept, and its first `first` bytes;
    /// nil for a name never kept or swept.
    func output(named name: String, first: Int) async throws(LedgerError) -> (size: Int, createdAt: Timestamp, head: [UInt8])?
    /// `count` bytes of the image from `offset` (zero-based); fewer at its end, none if it is gone.
    func outputPiece(named name: String, from offset: Int, count: Int) async throws(LedgerError) -> [UInt8]
    /// Forgets the images kept before `cutoff`; returns how many.
    func purgeOutputs(createdBefore cutoff: Timestamp) async throws(LedgerError) -> Int
    /// Forgets these images (a cancelled job's, never delivered).
    func deleteOutputs(named names: [String]) async throws(LedgerError)
}

/// The in-memory twin of the database's output table.
public final class InMemoryOutputRecords: OutputRecordStore {
    private let records = Mutex<[String: (bytes: [UInt8], createdAt: Timestamp)]>([:])

    public init() {}

    public func saveOutput(named name: String, bytes: [UInt8], at: Timestamp) {
        records.withLock { $0[name] = (bytes, at) }
    }

    public func output(named name: String, first: Int) -> (size: Int, createdAt: Timestamp, head: [UInt8])? {
        records.withLock { $0[name] }.map { ($0.bytes.count, $0.createdAt, Array($0.bytes.prefix(max(0, first)))) }
    }

    public func outputPiece(named name: String, from offset: Int, count: Int) -> [UInt8] {
        guard let bytes = records.withLock({ $0[name]?.bytes }), offset >= 0, count > 0, offset < bytes.count else { return [] }
        return Array(bytes[offset..<min(bytes.count, offset + count)])
    }

    public func purgeOutputs(createdBefore cutoff: Timestamp) -> Int {
        records.withLock { records in
            let old = records.filter { $0.value.createdAt < cutoff }.map(\.key)
            for name in old { records[name] = nil }
            return old.count
        }
    }

    public func deleteOutputs(named names: [String]) {
        records.withLock { records in for name in names { records[name] = nil } }
    }
}
