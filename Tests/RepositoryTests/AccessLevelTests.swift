import Foundation
import Testing

/// `public` is what the library products offer and nothing else: a target outside every library
/// product shares its declarations with the rest of this package through `package`, so no client of
/// the products can come to depend on them.
@Suite struct AccessLevelTests {
    @Test func onlyTheLibraryProductsDeclareAnythingPublic() async throws {
        let manifest = try await Manifest.load()
        let offered = Set(manifest.libraryTargets)
        #expect(offered.contains("GatewayAPI"), "the manifest lists the library products")
        var offenders: [String] = []
        for target in manifest.targets where target.type != "test" && !offered.contains(target.name) {
            for file in try SwiftFiles.of(target) {
                let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
                for (number, line) in lines.enumerated() where line.firstMatch(of: Self.publicDeclaration) != nil {
                    offenders.append("\(file.lastPathComponent):\(number + 1) in \(target.name): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(offenders.isEmpty, "public outside the library products (use package):\n\(offenders.joined(separator: "\n"))")
    }

    /// `public` as the access level of a declaration or an import, after any attributes.
    private static var publicDeclaration: Regex<Substring> { /^\s*(?:@\w+(?:\([^)]*\))?\s+)*public[\s(]/ }
}
