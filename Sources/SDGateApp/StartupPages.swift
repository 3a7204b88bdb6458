import Foundation
package import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What `sdgate serve` gives back to the kernel once it serves. Start-up runs code that never runs
/// again (the command line, the configuration and the catalog, the migrations), and each page it
/// touched stays mapped, with the pages the kernel mapped around it: in a static binary of about a
/// hundred megabytes that is about 30 MB of resident memory, most of the process's at rest.
///
/// Those pages are clean copies of files, so the process can stop mapping them for nothing
/// (`MADV_DONTNEED`): they stay in the kernel's page cache, and a page the serving code needs again
/// is mapped back without reading the disk. `MADV_PAGEOUT` is not used: the kernel pages out a
/// file's pages only for a process that may write the file, and the container image runs the
/// gateway as a user that may not write its binary, where it would leave every page mapped.
/// `MADV_RANDOM` stops the kernel reading ahead around a page faulted back once the cache has
/// dropped it. A mapping with pages the process wrote (the relocated constants of the binary) is
/// left alone: dropping those pages would put back the file's unrelocated bytes. The binary's
/// constant tables, which the linker put in its writable segment, are given back page by page
/// (StartupPages+WritableConstants.swift).
package enum StartupPages {
    /// A private, read-only mapping of a file (code or constant data) in a `/proc/PID/smaps` text.
    package struct Mapping: Equatable, Sendable {
        package let range: Range<UInt>
        /// Whether some of its pages are the process's own copies (`Anonymous` above 0 kB): pages
        /// written before they were made read-only, such as relocations.
        package let written: Bool
    }

    /// The private, read-only mappings of files in a `/proc/PID/smaps` text.
    package static func readOnlyFileMappings(in smaps: String) -> [Mapping] {
        var mappings: [Mapping] = []
        var current: Range<UInt>?, written = false
        func finish() {
            if let current { mappings.append(Mapping(range: current, written: written)) }
        }
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard let first = fields.first, !first.hasSuffix(":") else {
                // A field of the mapping above: "Anonymous:   12 kB".
                if current != nil, fields.count >= 2, fields[0] == "Anonymous:", fields[1] != "0" { written = true }
                continue
            }
            finish()
            current = privateReadOnlyFile(fields)
            written = false
        }
        finish()
        return mappings
    }

    /// The range of a mapping's header line, if it maps a file privately and read-only.
    private static func privateReadOnlyFile(_ fields: [Substring]) -> Range<UInt>? {
        // The path is the rest of the line, after the spaces that align it.
        guard fields.count == 6, fields[5].drop(while: { $0 == " " }).hasPrefix("/"), fields[1].count == 4 else { return nil }
        let permissions = Array(fields[1])
        guard permissions[1] == "-", permissions[3] == "p" else { return nil }
        return addressRange(fields[0])
    }

    /// The addresses of a mapping as `/proc/PID/maps` writes them: `55d0c0000000-55d0c3000000`.
    package static func addressRange(_ text: Substring) -> Range<UInt>? {
        let bounds = text.split(separator: "-")
        guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), start < end
        else { return nil }
        return start..<end
    }

    /// Gives the start-up pages back `delay` after the server listens: the parts that start with
    /// it (the hold reaper, the job runner, the workers' supervision) run their start-up code in
    /// their first rounds. Logs how much of the process's memory that was.
    package static func release(after delay: Duration, logger: Logger) {
        Task.detached(priority: .background) {
            try await Task.sleep(for: delay)
            release(logger: logger)
        }
    }

    static func release(logger: Logger) {
        #if os(Linux)
        // Everything is read first: code that runs after the pages are dropped maps its own back.
        guard let smaps = procFile("/proc/self/smaps") else { return }
        let before = residentBytes()
        let mappings = readOnlyFileMappings(in: smaps)
        let constants = writableConstants().map(unwrittenPages(of:)) ?? []
        var refused = 0
        for mapping in mappings {
            let start = UnsafeMutableRawPointer(bitPattern: mapping.range.lowerBound)
            let length = Int(mapping.range.upperBound - mapping.range.lowerBound)
            _ = madvise(start, length, MADV_RANDOM)
            if !mapping.written, madvise(start, length, MADV_DONTNEED) != 0 { refused += 1 }
        }
        for pages in constants where madvise(UnsafeMutableRawPointer(bitPattern: pages.lowerBound), pages.count, MADV_DONTNEED) != 0 {
            refused += 1
        }
        logger.debug(
            "gave back the start-up pages",
            metadata: [
                "resident_before": "\(before ?? 0)", "resident_after": "\(residentBytes() ?? 0)", "mappings_refused": "\(refused)",
            ])
        #endif
    }

    /// The whole text of a file of `/proc`. Such a file says it is empty and gives its text a page
    /// at a time: `String(contentsOfFile:)` returns the first page only, which for `smaps` is the
    /// first two mappings; `FileHandle.readToEnd()` reads until the end.
    package static func procFile(_ path: String) -> String? {
        guard let file = FileHandle(forReadingAtPath: path), let text = try? file.readToEnd() else { return nil }
        return String(decoding: text, as: UTF8.self)
    }

    /// The process's resident memory, from `/proc/self/statm` (in pages).
    private static func residentBytes() -> Int? {
        guard let statm = procFile("/proc/self/statm") else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
