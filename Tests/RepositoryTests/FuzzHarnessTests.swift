import Foundation
import TestSupport
import Testing

/// The fuzz targets compile the product's own source files, which `Fuzz/run` lists, without SwiftPM:
/// a type that moves to another file breaks a target and nothing else notices. Twice that went
/// unseen until someone fuzzed again. Each target is built here and replays its seeds, each of which
/// must pass the target's checks.
@Suite struct FuzzHarnessTests {
    @Test func everyTargetBuildsAndPassesItsSeeds() async throws {
        let run = Repository.path("Fuzz/run")
        let listed = try await Command.run(run, ["--list"])
        let targets = listed.output.split(whereSeparator: \.isWhitespace).map(String.init)
        #expect(listed.status == 0 && targets.count >= 5, "\(listed.output)\(listed.errors)")
        // One after another: the targets share the libraries the first one builds. At the lowest
        // priority: the builds take minutes of both of CI's cores while the other suites run, and
        // those wait for workers and servers under deadlines; this test has none.
        for target in targets {
            let folder = Repository.path("Fuzz/corpus/\(target)")
            let seeds = try FileManager.default.contentsOfDirectory(atPath: folder).sorted().map { folder + "/" + $0 }
            #expect(!seeds.isEmpty, "\(target) has no seeds")
            let replay = try await Command.run("nice", ["-n", "19", run, target] + seeds)
            #expect(replay.status == 0, "\(target): \(replay.errors.suffix(3000))")
        }
    }
}
