public import Foundation
public import GenerationCore

/// Generated images kept as files for the asynchronous APIs, which answer with URLs to them: the
/// output store of a single gateway, or of replicas that share a folder.
///
/// A name is 32 random bytes in URL-safe base64 (the prefix), optionally `-<index>` for the images
/// of one request, and an extension: it cannot be guessed, and there is no listing, so a file is
/// reachable only through the answer that named it. Files older than the retention are deleted by
/// `sweep`.
public struct OutputStore: OutputStorage {
    public let folder: URL
    public let retention: Duration

    public init(folder: URL, retention: Duration) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        self.folder = folder
        self.retention = retention
    }

    /// The kinds of file kept, by extension.
    public enum Kind: String, Sendable, CaseIterable {
        case jpeg = "jpg"
        case png = "png"
        /// The base64 text of an image, for ModelsLab's `base64: "yes"`.
        case base64 = "base64"

        public var contentType: String {
            switch self {
            case .jpeg: "image/jpeg"
            case .png: "image/png"
            case .base64: "text/plain; charset=utf-8"
            }
        }

        public init(_ format: ImageFormat) {
            self = format == .png ? .png : .jpeg
        }
    }

    /// Writes a file under a new name (atomically: a reader never sees half of it); returns the name.
    public func save(_ bytes: [UInt8], as kind: Kind) throws -> String {
        let name = Self.newName(kind)
        try save(bytes, named: name)
        return name
    }

    /// Writes a file under a name chosen before (`newName`), so that an answer could point at it
    /// before it existed.
    public func save(_ bytes: [UInt8], named name: String) throws {
        guard Self.kind(of: name) != nil else { throw CocoaError(.fileWriteInvalidFileName) }
        try Data(bytes).write(to: folder.appendingPathComponent(name), options: .atomic)
    }

    /// Deletes the files of these names that exist (the images of a job that is not delivered).
    public func delete(_ names: [String]) {
        for name in names where Self.kind(of: name) != nil {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
    }

    /// A fresh name: 32 random bytes, URL-safe base64, and the kind's extension.
    public static func newName(_ kind: Kind) -> String {
        "\(newPrefix()).\(kind.rawValue)"
    }

    /// Fresh names for the `count` images of one request, as ModelsLab names them:
    /// `<prefix>-<index>.<extension>`, with one new random prefix.
    public static func newNames(_ count: Int, _ kind: Kind) -> (prefix: String, names: [String]) {
        let prefix = newPrefix()
        return (prefix, (0..<count).map { "\(prefix)-\($0).\(kind.rawValue)" })
    }

    private static func newPrefix() -> String {
        var generator = SystemRandomNumberGenerator()
        let random = Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        return random.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// What is left of `retention` for a file modified `age` seconds ago, from none to all of it. The
    /// file system may hold any time (a tmpfs, hundreds of millions of years away): one past what 64
    /// bits of milliseconds count is that far, and not a trap.
    static func keptFor(_ retention: Duration, age: TimeInterval) -> Duration {
        let milliseconds = age * 1000
        let counted = Int64(exactly: milliseconds.rounded(.towardZero)) ?? (milliseconds < 0 ? 0 : .max)
        return min(retention, max(.zero, retention - .milliseconds(counted)))
    }

    /// A stored file and how long it is still kept, or nil for a name that is not one of ours or
    /// no longer exists.
    ///
    /// The file is read a piece at a time while it is sent, from one open handle: the pieces are
    /// those of the image whose head was read, even if it is written again meanwhile. (Read whole,
    /// a hundred downloads of one large image that never read their answer held it a hundred times.)
    public func file(named name: String) -> StoredOutput? {
        guard let kind = Self.kind(of: name), let handle = FileHandle(forReadingAtPath: folder.appendingPathComponent(name).path),
            let modified = modificationDate(of: name), let end = try? handle.seekToEnd(), let size = Int(exactly: end),
            (try? handle.seek(toOffset: 0)) != nil, let head = try? handle.read(upToCount: StoredOutput.headBytes)
        else { return nil }
        return StoredOutput(
            kind: kind, keptFor: Self.keptFor(retention, age: Date().timeIntervalSince(modified)), size: size, head: Array(head),
            read: { offset, count in
                try handle.seek(toOffset: UInt64(offset))
                return Array(try handle.read(upToCount: count) ?? Data())
            })
    }

    /// Deletes the files older than the retention; returns how many.
    @discardableResult
    public func sweep(now: Date = Date()) -> Int {
        let cutoff = now.addingTimeInterval(-Double(retention.components.seconds))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        var deleted = 0
        for name in names where Self.kind(of: name) != nil {
            guard let modified = modificationDate(of: name), modified < cutoff else { continue }
            if (try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))) != nil { deleted += 1 }
        }
        return deleted
    }

    /// The kind of a well-formed name (43 URL-safe base64 characters, optionally `-` and an index
    /// of up to 3 digits, a dot, a known extension); anything else, such as a path, is refused
    /// before the file system is asked.
    static func kind(of name: String) -> Kind? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let stem = parts[0].utf8, prefix = stem.prefix(43), index = stem.dropFirst(43)
        guard prefix.count == 43,
            prefix.allSatisfy({
                $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0)
            }),
            index.isEmpty
                || (index.first == UInt8(ascii: "-") && (2...4).contains(index.count) && index.dropFirst().allSatisfy { (48...57).contains($0) })
        else { return nil }
        return Kind(rawValue: String(parts[1]))
    }

    private func modificationDate(of name: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(name).path))?[.modificationDate] as? Date
    }
}
