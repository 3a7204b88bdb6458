public import Foundation
public import GenerationCore
public import Ledger

/// Generated images in the database the gateways share, so that an answer's links work on every
/// replica, wherever its job ran: the same names, retention and sweep as the file store. Each image
/// is one row, written whole and read in pieces while it is sent (`StoredOutput`).
public struct DatabaseOutputStore: OutputStorage {
    let records: any OutputRecordStore
    public let retention: Duration
    let clock: any WallClock

    public init(records: any OutputRecordStore, retention: Duration, clock: any WallClock = SystemWallClock()) {
        self.records = records
        self.retention = retention
        self.clock = clock
    }

    public func save(_ bytes: [UInt8], named name: String) async throws {
        guard OutputStore.kind(of: name) != nil else { throw CocoaError(.fileWriteInvalidFileName) }
        try await records.saveOutput(named: name, bytes: bytes, at: clock.millisecondsNow)
    }

    public func file(named name: String) async -> StoredOutput? {
        guard let kind = OutputStore.kind(of: name), let record = try? await records.output(named: name, first: StoredOutput.headBytes) else {
            return nil
        }
        let age = Duration.milliseconds(max(0, clock.millisecondsNow - record.createdAt))
        return StoredOutput(
            kind: kind, keptFor: max(.zero, retention - age), size: record.size, head: record.head,
            read: { [records] offset, count in try await records.outputPiece(named: name, from: offset, count: count) })
    }

    public func delete(_ names: [String]) async {
        try? await records.deleteOutputs(named: names.filter { OutputStore.kind(of: $0) != nil })
    }

    /// Every replica sweeps; a row is deleted once, by whichever comes first.
    @discardableResult
    public func sweep(now: Date) async -> Int {
        let cutoff = Int64((now.timeIntervalSince1970 * 1000).rounded(.down)) - retention.wholeMilliseconds
        return (try? await records.purgeOutputs(createdBefore: cutoff)) ?? 0
    }
}
