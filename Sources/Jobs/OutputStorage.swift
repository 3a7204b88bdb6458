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
    /// Deletes these images, if kept: a cancelled job's, which are never delivered.
    func delete(_ names: [String]) async
    /// Deletes the images older than the retention; returns how many.
    @discardableResult
    func sweep(now: Date) async -> Int
}

/// A kept image as `GET /generations/{name}` serves it: its first bytes (enough to tell its format),
/// and the rest read a piece at a time while it is sent, so that a download holds one piece in
/// memory, not the image.
public struct StoredOutput: Sendable {
    public let kind: OutputStore.Kind
    /// Until the sweep deletes it (zero once the retention has passed and before the sweep came).
    public let keptFor: Duration
    /// The whole image's length in bytes.
    public let size: Int
    public let head: [UInt8]
    /// Reads `count` bytes from `offset` (past the head); fewer or none if the image is gone.
    let read: @Sendable (_ offset: Int, _ count: Int) async throws -> [UInt8]

    /// The bytes read in pieces of this size, at most, after the head.
    public static let pieceBytes = 256 << 10

    /// Enough of an image to tell its format and size (`ImageInspector`): a PNG's or WebP's header
    /// is in its first bytes, a JPEG's frame header after its metadata segments.
    public static let headBytes = 64 << 10

    /// Calls `write` with the head, then with each piece up to `size`; throws if the image went away
    /// while it was read (swept, or written again shorter).
    public func send(_ write: ([UInt8]) async throws -> Void) async throws {
        try await write(head)
        var offset = head.count
        while offset < size {
            let piece = try await read(offset, min(Self.pieceBytes, size - offset))
            guard !piece.isEmpty else { throw CocoaError(.fileReadCorruptFile) }
            try await write(piece)
            offset += piece.count
        }
    }

    /// The whole image, in memory.
    public func bytes() async throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        try await send { bytes += $0 }
        return bytes
    }
}
