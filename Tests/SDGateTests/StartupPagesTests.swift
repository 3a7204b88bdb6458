import Foundation
import TestSupport
import Testing

@testable import SDGateApp

#if canImport(Glibc)
import Glibc
#endif

/// `sdgate serve` gives its start-up pages back once it listens: the read-only mappings of its
/// binary and libraries, and only those.
@Suite("Start-up pages")
struct StartupPagesTests {
    @Test func onlyPrivateReadOnlyMappingsOfFilesAreChosenAndTheirWrittenPagesNoted() {
        let smaps = """
            55d0c0000000-55d0c3000000 r-xp 00000000 08:01 1234                       /usr/local/bin/sdgate
            Rss:                5976 kB
            Anonymous:             0 kB
            VmFlags: rd ex mr mw me
            55d0c3000000-55d0c3100000 r--p 03000000 08:01 1234                       /usr/local/bin/sdgate
            Anonymous:          1368 kB
            55d0c3100000-55d0c5000000 rw-p 03100000 08:01 1234                       /usr/local/bin/sdgate
            Anonymous:             4 kB
            55d0c5000000-55d0c5100000 rw-p 00000000 00:00 0                          [heap]
            7f0000000000-7f0000021000 rw-p 00000000 00:00 0
            Anonymous:           132 kB
            7f0000100000-7f0000200000 r--s 00000000 08:01 99                         /data/sdgate.sqlite-shm
            7f0000300000-7f0000400000 r-xp 00000000 08:01 77                         /usr/lib/x86_64-linux-gnu/libc.so.6
            Anonymous:             0 kB
            7fff00000000-7fff00002000 r-xp 00000000 00:00 0                          [vdso]
            7fff00003000-7fff00002000 r-xp 00000000 08:01 78                         /reversed/bounds
            not a mapping line
            """
        #expect(
            StartupPages.readOnlyFileMappings(in: smaps) == [
                .init(range: 0x55d0_c000_0000..<0x55d0_c300_0000, written: false),
                .init(range: 0x55d0_c300_0000..<0x55d0_c310_0000, written: true),
                .init(range: 0x7f00_0030_0000..<0x7f00_0040_0000, written: false),
            ])
    }

    @Test func theRunningGatewaysCodeIsAdvisedNoReadAheadAndItStillServes() async throws {
        let gateway = try await RunningGateway.start()
        // The kernel shows madvise(MADV_RANDOM) as the flag "rr" of a mapping in /proc/PID/smaps.
        // The release runs at background priority ten seconds after the gateway listens: on a
        // machine busy with the rest of the suite it can come many seconds later.
        // The libraries' mappings come far down the file, past the first page that a plain read of it
        // returns.
        let pid = gateway.process.processIdentifier
        let advised = await eventually(timeout: .seconds(90)) {
            (Self.codeMappingsFlags(of: pid) + Self.codeMappingsFlags(of: pid, file: "/libc.so.6")).allSatisfy { $0.contains("rr") }
        }
        let flags = Self.codeMappingsFlags(of: pid), libraryFlags = Self.codeMappingsFlags(of: pid, file: "/libc.so.6")
        #expect(!flags.isEmpty && !libraryFlags.isEmpty && advised, "\(flags) \(libraryFlags)")
        let health = try await Command.run("curl", ["-s", "http://127.0.0.1:\(gateway.port)/health"])
        #expect(health.output == #"{"status":"ok"}"#)
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
    }

    /// The container image's case: the binary belongs to root and the gateway runs as a user of its
    /// own. The kernel pages out a file's pages only for a process that may write the file, so the
    /// pages must be given back without that.
    @Test(.enabled(if: getuid() == 0, "runs the gateway as another user, which only root may"))
    func aGatewayThatMayNotWriteItsBinaryGivesItsCodePagesBack() async throws {
        let folder = Scratch.path("not-its-own"), data = folder.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let nobody: UInt32 = 65534
        #expect(chown(data.path, nobody, nobody) == 0)
        // A copy in a folder any user may enter; it belongs to root, as in the image.
        let binary = folder.appendingPathComponent("sdgate")
        try FileManager.default.copyItem(at: CommandLineTests.binary, to: binary)
        let gateway = try await RunningGateway.start(environment: ["SDGATE_DATA_DIR": data.path], binary: binary.path, user: nobody)
        let pid = gateway.process.processIdentifier
        let atStart = Self.codeResidentKilobytes(of: pid)
        // The release advises no read-ahead ("rr") just before it drops the pages. The code that
        // runs afterwards maps some back, with the pages around each: not half of them.
        let released = await eventually(timeout: .seconds(90)) {
            Self.codeMappingsFlags(of: pid).allSatisfy { $0.contains("rr") } && Self.codeResidentKilobytes(of: pid) < atStart / 2
        }
        #expect(atStart > 0 && released, "code resident at start \(atStart) kB, now \(Self.codeResidentKilobytes(of: pid)) kB")
        let health = try await Command.run("curl", ["-s", "http://127.0.0.1:\(gateway.port)/health"])
        #expect(health.output == #"{"status":"ok"}"#)
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
    }

    /// The VmFlags of each executable mapping of the sdgate binary (or of `file`) in the process.
    static func codeMappingsFlags(of pid: Int32, file: String = "/sdgate") -> [String] {
        codeFields(of: pid, file: file, "VmFlags:").map(String.init)
    }

    /// The kilobytes of the sdgate binary's code resident in the process.
    static func codeResidentKilobytes(of pid: Int32) -> Int {
        codeFields(of: pid, file: "/sdgate", "Rss:").reduce(0) {
            $0 + (Int($1.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0)
        }
    }

    /// The lines starting with `field` of each executable mapping of the file whose path ends with
    /// `file`, in `/proc/PID/smaps`.
    static func codeFields(of pid: Int32, file: String, _ field: String) -> [Substring] {
        guard let smaps = StartupPages.procFile("/proc/\(pid)/smaps") else { return [] }
        var lines: [Substring] = [], inCode = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 6, fields[0].contains("-") {
                inCode = fields[1] == "r-xp" && fields[5].hasSuffix(file)
            } else if inCode, line.hasPrefix(field) {
                lines.append(line)
            }
        }
        return lines
    }
}
