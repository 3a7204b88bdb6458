import Foundation
import TestSupport
import Testing

/// The README's "Running it for a team" commands, run as written, one after another, in a folder
/// with `sdgate` on the PATH, while the gateway serves from that folder's `./data` (the README's
/// first command, which creates the ledger there): each exits 0, and what they print and write is
/// what the README says. Only `<key-id>` is filled in, from what `keys create` printed.
@Suite("README commands")
struct ReadmeCommandsTests {
    /// The first shell block after `heading` in the README, its lines without their comments.
    static func commands(under heading: String) throws -> [String] {
        let readme = try String(contentsOfFile: Repository.path("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: heading + "\n").dropFirst().first)
        let block = try #require(section.components(separatedBy: "```sh\n").dropFirst().first?.components(separatedBy: "```").first)
        return block.split(separator: "\n").map { line in
            (String(line).components(separatedBy: "  #").first ?? "").trimmingCharacters(in: .whitespaces)
        }
    }

    @Test func theTeamCommandsWorkAsWritten() async throws {
        let commands = try Self.commands(under: "## Running it for a team")
        #expect(commands.count >= 8 && commands.allSatisfy { $0.hasPrefix("sdgate ") }, "\(commands)")
        let folder = Scratch.path("readme")
        let bin = folder.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: bin.appendingPathComponent("sdgate"), withDestinationURL: CommandLineTests.binary)
        let path = bin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let gateway = try await RunningGateway.start(environment: ["SDGATE_DATA_DIR": folder.appendingPathComponent("data").path])

        var keyID: String?
        var outputs: [String: String] = [:]
        for command in commands {
            let line = keyID.map { command.replacingOccurrences(of: "<key-id>", with: $0) } ?? command
            let ran = try await Command.run("bash", ["-c", "cd '\(folder.path)' && " + line], environment: ["PATH": path])
            #expect(ran.status == 0, "\(line): \(ran.errors)")
            outputs[command] = ran.output
            if command.hasPrefix("sdgate keys create") { keyID = ran.output.split(separator: " ").first.map(String.init) }
        }
        let shown = try #require(outputs.first { $0.key.hasPrefix("sdgate keys show") }?.value)
        #expect(shown.contains("day budget 10 (Europe/Paris): spent 0, left 10"), "\(shown)")
        let export = try String(contentsOf: folder.appendingPathComponent("ledger.csv"), encoding: .utf8)
        #expect(export.hasPrefix("time,account_type,account_id") && export.contains(",topup,100,") && export.contains(",topup,500,"))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("sdgate-copy.sqlite").path))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("data/sdgate.sqlite").path), "the default data folder")
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
    }
}
