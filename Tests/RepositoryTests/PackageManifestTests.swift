import Foundation
import Testing

/// Each target in Package.swift declares exactly the package modules its files import: a module used
/// without being declared builds only while another target happens to pull it in, and one declared
/// but never imported is a dependency nobody can see a reason for.
@Suite struct PackageManifestTests {
    @Test func everyTargetDeclaresWhatItImportsAndNothingElse() async throws {
        let targets = try await Manifest.load().targets
        #expect(targets.count > 10, "the manifest lists the package's targets")
        var mismatches: [String] = []
        for target in targets {
            let imported = try SwiftImports.modules(inTarget: target).subtracting(SwiftImports.systemModules)
            let declared = Set(target.dependencies.map(\.module))
            let undeclared = imported.subtracting(declared)
            // A test target may depend on an executable only to have its binary built: the live
            // tests start `sdgate` itself rather than import it.
            let executables = Set(targets.filter { $0.type == "executable" }.map(\.name))
            let unused = declared.subtracting(imported).filter { !(target.type == "test" && executables.contains($0)) }
            if !undeclared.isEmpty { mismatches.append("\(target.name) imports but does not declare \(undeclared.sorted())") }
            if !unused.isEmpty { mismatches.append("\(target.name) declares but never imports \(unused.sorted())") }
        }
        #expect(mismatches.isEmpty, "Package.swift and the imports disagree:\n\(mismatches.joined(separator: "\n"))")
    }

    @Test func theImportScannerReadsEveryFormOfImportAndNoStringThatLooksLikeOne() {
        let source = """
            public import Foundation
            @testable import GatewayAPI
            package import struct Ledger.KeyRecord
            @preconcurrency import Logging // a comment
              import Dispatch
            let script = \"\"\"
                import sqlite3, sys
                \"\"\"
            // import Commented
            """
        #expect(SwiftImports.modules(in: source) == ["Foundation", "GatewayAPI", "Ledger", "Logging", "Dispatch"])
    }
}

/// The modules Swift files import, read line by line.
enum SwiftImports {
    /// Modules that come with the toolchain or the system, never from a package dependency.
    static let systemModules: Set<String> = [
        "Foundation", "FoundationEssentials", "FoundationNetworking", "Glibc", "Musl", "Darwin", "Dispatch",
        "Synchronization", "Testing", "XCTest", "Observation", "RegexBuilder", "_Concurrency",
    ]

    static func modules(in source: String) -> [String] {
        // An import on a line of its own, with any attribute, access level or declaration kind;
        // what follows `import` inside a string or after `//` does not match.
        let importLine =
            /^\s*(?:@\w+\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?(\w+)[\w.]*\s*(?:\/\/.*)?$/
        var modules: [String] = []
        var insideMultilineString = false
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.components(separatedBy: "\"\"\"").count % 2 == 0 { insideMultilineString.toggle() }
            if !insideMultilineString, let match = line.wholeMatch(of: importLine), !modules.contains(String(match.1)) {
                modules.append(String(match.1))
            }
        }
        return modules
    }

    static func modules(inTarget target: ManifestTarget) throws -> Set<String> {
        try SwiftFiles.of(target).reduce(into: []) { found, file in
            found.formUnion(modules(in: try String(contentsOf: file, encoding: .utf8)))
        }
    }
}
