import Foundation
import TestSupport

/// Package.swift as `swift package dump-package` describes it.
struct Manifest {
    var targets: [ManifestTarget]
    /// The targets of the library products: what the package offers its clients.
    var libraryTargets: [String]

    /// The manifest, read once for every test that asks (`swift package` takes seconds).
    static func load() async throws -> Manifest { try await loaded.value }

    private static let loaded = Task { try await read() }

    private static func read() async throws -> Manifest {
        // A scratch folder of its own: the package's `.build` is locked while `swift test` runs.
        let scratch = Scratch.path("manifest")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let dump = try await Command.run("swift", ["package", "--package-path", Repository.path(""), "--scratch-path", scratch.path, "dump-package"])
        guard dump.status == 0, let json = try JSONSerialization.jsonObject(with: Data(dump.output.utf8)) as? [String: Any],
            let targets = json["targets"] as? [[String: Any]], let products = json["products"] as? [[String: Any]]
        else { throw ManifestError.unreadable(dump.errors) }
        let libraries = products.filter { ($0["type"] as? [String: Any])?["library"] != nil }
        return Manifest(
            targets: try targets.map(ManifestTarget.init(describing:)),
            libraryTargets: libraries.flatMap { $0["targets"] as? [String] ?? [] })
    }
}

/// One target of the manifest.
struct ManifestTarget {
    struct Dependency {
        /// The module a dependency provides: a target's own name, or a product's (every product this
        /// package uses is named after its module).
        var module: String
    }

    var name: String
    var type: String
    var path: String
    var excluded: [String]
    var dependencies: [Dependency]

    fileprivate init(describing target: [String: Any]) throws {
        guard let name = target["name"] as? String, let type = target["type"] as? String,
            let dependencies = target["dependencies"] as? [[String: Any]]
        else { throw ManifestError.unreadable("a target without a name, type or dependencies") }
        self.name = name
        self.type = type
        path = target["path"] as? String ?? (type == "test" ? "Tests/" : "Sources/") + name
        excluded = target["exclude"] as? [String] ?? []
        self.dependencies = try dependencies.map { dependency in
            // Each kind ("byName", "target", "product") holds the module's name first.
            guard let value = dependency.values.first as? [Any], let module = value.first as? String
            else { throw ManifestError.unreadable("dependency \(dependency) of \(name)") }
            return Dependency(module: module)
        }
    }
}

enum ManifestError: Error {
    case unreadable(String)
}

/// The Swift files a target compiles: those under its folder, less what it excludes.
enum SwiftFiles {
    static func of(_ target: ManifestTarget) throws -> [URL] {
        let root = URL(fileURLWithPath: Repository.path(target.path))
        let excluded = target.excluded.map { root.appendingPathComponent($0).standardized.path + "/" }
        guard let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        return files.compactMap { $0 as? URL }.filter { file in
            file.pathExtension == "swift" && !excluded.contains(where: { file.standardized.path.hasPrefix($0) })
        }
    }
}

/// The test files, of every test target and their support, that contain any of `texts`, by file
/// name; `except` names files allowed to.
enum TestSources {
    static func naming(any texts: [String], except allowed: Set<String>) async throws -> (targets: Int, offenders: [String]) {
        let targets = try await Manifest.load().targets.filter { $0.path.hasPrefix("Tests/") }
        var offenders: [String] = []
        for file in try targets.flatMap(SwiftFiles.of) where !allowed.contains(file.lastPathComponent) {
            let source = try String(contentsOf: file, encoding: .utf8)
            if texts.contains(where: source.contains) { offenders.append(file.lastPathComponent) }
        }
        return (targets.count, offenders)
    }
}
