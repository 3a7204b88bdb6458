import Foundation
import TestSupport
import Testing

/// The tests leave nothing in the machine's temporary folder: their files, and those of the programs
/// they start, go in the test process's scratch folder, which goes when the process ends. A machine
/// that runs the suite all day (CI) once filled its disk with what earlier runs had left.
@Suite struct ScratchTests {
    @Test func testFilesGoInTheScratchFolderOnly() async throws {
        let (targets, offenders) = try await TestSources.naming(
            any: ["temporaryDirectory", "NSTemporaryDirectory", "\"/tmp"], except: ["Scratch.swift", "ScratchTests.swift"])
        #expect(targets > 5, "the manifest lists the test targets")
        #expect(offenders.isEmpty, "use Scratch.path, not the temporary folder itself: \(offenders)")
    }

    @Test func programsTheTestsStartGetTheScratchFolderAsTheirTemporaryFolder() async throws {
        let child = try await Command.run("python3", ["-c", "import tempfile; print(tempfile.mkdtemp())"])
        #expect(child.status == 0, "\(child.errors)")
        #expect(child.output.hasPrefix(Scratch.root.path + "/"), "\(child.output)")
        #expect(Scratch.path("x").path.hasPrefix(Scratch.root.path + "/"))
    }
}
