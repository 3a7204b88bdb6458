package import Foundation

/// Where tests put their files: one folder per test process, removed when the process exits, so
/// that running the suite again and again does not fill the disk. The programs tests start get it
/// as their TMPDIR too. (A process that crashes leaves its folder behind, named with its process
/// id, for a look at what it wrote.)
package enum Scratch {
    package static let root: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sdgate-tests-\(getpid())")
        try? FileManager.default.removeItem(at: root)  // an earlier process's, with the same id
        do {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            fatalError("cannot make the tests' scratch folder \(root.path): \(error)")
        }
        atexit { try? FileManager.default.removeItem(at: Scratch.root) }
        return root
    }()

    /// A new path, unique in this process, that nothing exists at yet: `name-UUID.pathExtension`.
    package static func path(_ name: String, pathExtension: String? = nil) -> URL {
        let unique = root.appendingPathComponent("\(name)-\(UUID().uuidString)")
        return pathExtension.map { unique.appendingPathExtension($0) } ?? unique
    }
}
