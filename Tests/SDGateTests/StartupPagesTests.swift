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
    @Test func onlyPrivateReadOnlyMappingsOfFilesAreChosen() {
        let maps = """
            55d0c0000000-55d0c3000000 r-xp 00000000 08:01 1234                       /usr/local/bin/sdgate
            55d0c3000000-55d0c3100000 r--p 03000000 08:01 1234                       /usr/local/bin/sdgate
            55d0c3100000-55d0c5000000 rw-p 03100000 08:01 1234                       /usr/local/bin/sdgate
            55d0c5000000-55d0c5100000 rw-p 00000000 00:00 0                          [heap]
            7f0000000000-7f0000021000 rw-p 00000000 00:00 0
            7f0000100000-7f0000200000 r--s 00000000 08:01 99                         /data/sdgate.sqlite-shm
            7f0000300000-7f0000400000 r-xp 00000000 08:01 77                         /usr/lib/x86_64-linux-gnu/libc.so.6
            7fff00000000-7fff00002000 r-xp 00000000 00:00 0                          [vdso]
            7fff00003000-7fff00002000 r-xp 00000000 08:01 78                         /reversed/bounds
            not a mapping line
            """
        #expect(
            StartupPages.readOnlyFileMappings(in: maps) == [
                0x55d0_c000_0000..<0x55d0_c300_0000, 0x55d0_c300_0000..<0x55d0_c310_0000, 0x7f00_0030_0000..<0x7f00_0040_0000,
            ])
    }

    @Test func theRunningGatewaysCodeIsAdvisedNoReadAheadAndItStillServes() async throws {
        let gateway = try await RunningGateway.start()
        // The kernel shows madvise(MADV_RANDOM) as the flag "rr" of a mapping in /proc/PID/smaps.
        let advised = await eventually(timeout: .seconds(30)) {
            Self.codeMappingsFlags(of: gateway.process.processIdentifier).allSatisfy { $0.contains("rr") }
        }
        let flags = Self.codeMappingsFlags(of: gateway.process.processIdentifier)
        #expect(!flags.isEmpty && advised, "\(flags)")
        let health = try await Command.run("curl", ["-s", "http://127.0.0.1:\(gateway.port)/health"])
        #expect(health.output == #"{"status":"ok"}"#)
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
    }

    /// The VmFlags of each executable mapping of the sdgate binary in the process.
    static func codeMappingsFlags(of pid: Int32) -> [String] {
        guard let smaps = try? String(contentsOfFile: "/proc/\(pid)/smaps", encoding: .utf8) else { return [] }
        var flags: [String] = [], inBinaryCode = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 6, fields[0].contains("-") {
                inBinaryCode = fields[1] == "r-xp" && fields[5].hasSuffix("/sdgate")
            } else if inBinaryCode, line.hasPrefix("VmFlags:") {
                flags.append(String(line))
            }
        }
        return flags
    }
}
