import Foundation
import TestSupport
import Testing

/// The tests leave nothing in the machine's temporary folder: their files, and those of the programs
/// they start, go in the test process's scratch folder, which goes when the process ends. A machine
/// that runs the suite all day (CI) once filled its disk with what earlier runs had left.
@Suite struct ScratchTests {
    @Test func testFilesGoInTheScratchFolderOnly() async throws {
        let targets = try await Manifest.load().targets.filter { $0.path.hasPrefix("Tests/") }
        var offenders: [String] = []
        for file in try targets.flatMap(SwiftFiles.of) where !["Scratch.swift", "ScratchTests.swift"].contains(file.lastPathComponent) {
            let source = try String(contentsOf: file, encoding: .utf8)
            if source.contains("temporaryDirectory") || source.contains("NSTemporaryDirectory") || source.contains("\"/tmp") {
                offenders.append(file.lastPathComponent)
            }
        }
        #expect(targets.count > 5, "the manifest lists the test targets")
        #expect(offenders.isEmpty, "use Scratch.path, not the temporary folder itself: \(offenders)")
    }

    @Test func programsTheTestsStartGetTheScratchFolderAsTheirTemporaryFolder() async throws {
        let child = try await Command.run("python3", ["-c", "import tempfile; print(tempfile.mkdtemp())"])
        #expect(child.status == 0, "\(child.errors)")
        #expect(child.output.hasPrefix(Scratch.root.path + "/"), "\(child.output)")
        #expect(Scratch.path("x").path.hasPrefix(Scratch.root.path + "/"))
    }
}
