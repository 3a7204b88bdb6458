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
        let atStart = Self.codeResidentKilobytes(of: pid), constantsAtStart = Self.writableResident(of: pid).clean
        // The release advises no read-ahead ("rr") just before it drops the pages. The code that
        // runs afterwards maps some back, with the pages around each: not half of them.
        let released = await eventually(timeout: .seconds(90)) {
            Self.codeMappingsFlags(of: pid).allSatisfy { $0.contains("rr") } && Self.codeResidentKilobytes(of: pid) < atStart / 2
                && Self.writableResident(of: pid).clean < constantsAtStart / 2
        }
        #expect(
            atStart > 0 && constantsAtStart > 0 && released,
            "code resident at start \(atStart) kB, now \(Self.codeResidentKilobytes(of: pid)) kB; constants \(constantsAtStart) kB, now \(Self.writableResident(of: pid).clean) kB"
        )
        let health = try await Command.run("curl", ["-s", "http://127.0.0.1:\(gateway.port)/health"])
        #expect(health.output == #"{"status":"ok"}"#)
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
    }

    /// The binary's constant tables sit in its writable mapping, beside the variables it writes:
    /// the release drops the pages that still hold the file's bytes, keeps the process's own
    /// copies, and the gateway goes on serving from what it maps back.
    @Test func theBinarysWritableConstantsAreGivenBackAndItsWrittenPagesKept() async throws {
        let gateway = try await RunningGateway.start()
        let pid = gateway.process.processIdentifier
        let atStart = Self.writableResident(of: pid)
        let released = await eventually(timeout: .seconds(90)) {
            let now = Self.writableResident(of: pid)
            return now.clean < atStart.clean / 2 && now.written >= atStart.written
        }
        let now = Self.writableResident(of: pid)
        #expect(
            atStart.clean > 0 && released,
            "clean at start \(atStart.clean) kB, now \(now.clean) kB; written at start \(atStart.written) kB, now \(now.written) kB")
        let health = try await Command.run("curl", ["-s", "http://127.0.0.1:\(gateway.port)/health"])
        #expect(health.output == #"{"status":"ok"}"#)
        let refused = try await Command.run(
            "curl", ["-s", "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}", "http://127.0.0.1:\(gateway.port)/v1/sdxl-img2img"])
        #expect(refused.output == #"{"error":"Missing Authorization or x-api-key"}"#)
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
    }

    /// Only the pages that still hold the file's bytes are chosen: a page the process wrote, and
    /// the part of a page outside the range, are left out. Dropping the chosen ones keeps what was
    /// written, and the others read as the file again.
    @Test func aWrittenPageIsKeptAndTheFilesPagesAroundItAreChosen() throws {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE))), pages = 8
        let path = Scratch.path("constants").path
        try Data((0..<pages * pageSize).map { UInt8(truncatingIfNeeded: $0 / pageSize + 1) }).write(to: URL(fileURLWithPath: path))
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        let mapping = mmap(nil, pages * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, descriptor, 0)
        let mapped = try #require(mapping == MAP_FAILED ? nil : mapping)
        defer { munmap(mapped, pages * pageSize) }
        let bytes = mapped.assumingMemoryBound(to: UInt8.self)
        var sum = 0
        for page in 0..<pages { sum += Int(bytes[page * pageSize]) }
        #expect(sum == (1...pages).reduce(0, +))
        bytes[2 * pageSize] = 0xAA
        bytes[5 * pageSize + 7] = 0xBB
        let base = UInt(bitPattern: mapped), size = UInt(pageSize)
        // The range starts inside page 0 and ends inside page 7: those two are not whole.
        let runs = StartupPages.unwrittenPages(of: base + 1..<base + 7 * size + 1)
        #expect(runs == [base + size..<base + 2 * size, base + 3 * size..<base + 5 * size, base + 6 * size..<base + 7 * size])
        for run in runs { #expect(madvise(UnsafeMutableRawPointer(bitPattern: run.lowerBound), run.count, MADV_DONTNEED) == 0) }
        #expect(bytes[2 * pageSize] == 0xAA && bytes[5 * pageSize + 7] == 0xBB)
        #expect((0..<pages).map { bytes[$0 * pageSize + 1] } == (1...pages).map { UInt8($0) })
    }

    /// The test runner's own binary is linked as the gateway's is: its `.rodata` is found in its
    /// writable mapping. A binary whose constants are read-only, and a file that is no ELF binary
    /// or is cut short, give none.
    @Test func theConstantsAreFoundOnlyWhereTheyAreWritable() throws {
        let constants = try #require(StartupPages.writableConstants())
        let maps = try #require(StartupPages.procFile("/proc/self/maps"))
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let holding = maps.split(separator: "\n").filter { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 6, fields[5] == executable, let bounds = StartupPages.addressRange(fields[0]) else { return false }
            return bounds.overlaps(constants)
        }
        #expect(!holding.isEmpty && holding.allSatisfy { $0.split(separator: " ")[1] == "rw-p" }, "\(holding)")
        #expect(StartupPages.writableConstants(executable: "/bin/sh") == nil)
        let notELF = Scratch.path("not-elf").path, cut = Scratch.path("cut-short").path
        try Data("#!/bin/sh\necho\n".utf8).write(to: URL(fileURLWithPath: notELF))
        try #require(try FileHandle(forReadingAtPath: "/proc/self/exe")?.read(upToCount: 4096)).write(to: URL(fileURLWithPath: cut))
        #expect(StartupPages.writableConstants(executable: notELF) == nil)
        #expect(StartupPages.writableConstants(executable: cut) == nil)
        #expect(StartupPages.writableConstants(executable: Scratch.path("absent").path) == nil)
    }

    /// The kilobytes of the binary's writable mapping resident in the process: those still the
    /// file's, and those the process wrote.
    static func writableResident(of pid: Int32) -> (clean: Int, written: Int) {
        let resident = kilobytes(mappingFields(of: pid, permissions: "rw-p", file: "/sdgate", "Rss:"))
        let written = kilobytes(mappingFields(of: pid, permissions: "rw-p", file: "/sdgate", "Anonymous:"))
        return (resident - written, written)
    }

    /// The VmFlags of each executable mapping of the sdgate binary (or of `file`) in the process.
    static func codeMappingsFlags(of pid: Int32, file: String = "/sdgate") -> [String] {
        mappingFields(of: pid, file: file, "VmFlags:").map(String.init)
    }

    /// The kilobytes of the sdgate binary's code resident in the process.
    static func codeResidentKilobytes(of pid: Int32) -> Int {
        kilobytes(mappingFields(of: pid, permissions: "r-xp", file: "/sdgate", "Rss:"))
    }

    /// The sum of lines such as "Rss:   12 kB".
    static func kilobytes(_ lines: [Substring]) -> Int {
        lines.reduce(0) { $0 + (Int($1.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0) }
    }

    /// The lines starting with `field` of each mapping with `permissions` of the file whose path
    /// ends with `file`, in `/proc/PID/smaps`.
    static func mappingFields(of pid: Int32, permissions: String = "r-xp", file: String, _ field: String) -> [Substring] {
        guard let smaps = StartupPages.procFile("/proc/\(pid)/smaps") else { return [] }
        var lines: [Substring] = [], inMapping = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 6, fields[0].contains("-") {
                inMapping = fields[1] == permissions && fields[5].hasSuffix(file)
            } else if inMapping, line.hasPrefix(field) {
                lines.append(line)
            }
        }
        return lines
    }
}
