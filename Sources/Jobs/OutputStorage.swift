public import Foundation

/// Where generated images are kept for the answers that link to them (`/generations/{name}`): the
/// folder of one gateway (`OutputStore`, the default), or the database every replica reads
/// (`DatabaseOutputStore`, with PostgreSQL). The names are the file store's (`OutputStore.newName`):
/// unguessable, and a name that is not one is refused before any storage is asked.
public protocol OutputStorage: Sendable {
    /// How long an image is kept; `sweep` deletes the older ones.
    var retention: Duration { get }
    /// Keeps `bytes` under a name chosen before (`OutputStore.newName`), so that an answer could
    /// point at it before it existed. A reader never sees half of it.
    func save(_ bytes: [UInt8], named name: String) async throws
    /// A kept image and how long it is still kept, or nil for a name that is not one of ours or is
    /// no longer kept.
    func file(named name: String) async -> StoredOutput?
    /// Deletes the images older than the retention; returns how many.
    @discardableResult
    func sweep(now: Date) async -> Int
}

/// A kept image as `GET /generations/{name}` serves it.
public struct StoredOutput: Sendable {
    public let bytes: [UInt8]
    public let kind: OutputStore.Kind
    /// Until the sweep deletes it (zero once the retention has passed and before the sweep came).
    public let keptFor: Duration
}
