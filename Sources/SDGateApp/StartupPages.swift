import Foundation
package import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What `sdgate serve` gives back to the kernel once it serves. Start-up runs code that never runs
/// again (the command line, the configuration and the catalog, the migrations), and each page it
/// touched stays mapped, with the pages the kernel mapped around it: in a static binary of about a
/// hundred megabytes that is about 30 MB of resident memory, most of the process's at rest. Those
/// pages are clean copies of files, so they can be given back for nothing: `MADV_PAGEOUT` asks the
/// kernel to reclaim them now (pages that another process maps too stay), and `MADV_RANDOM` stops
/// it reading ahead around each page that the serving code faults back in. Writable mappings are
/// left alone: their written pages are the process's own data, which reclaim could only swap out.
package enum StartupPages {
    /// The private, read-only mappings of files (code and constant data) in a `/proc/PID/maps` text.
    package static func readOnlyFileMappings(in maps: String) -> [Range<UInt>] {
        maps.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            // The path is the rest of the line, after the spaces that align it.
            guard fields.count == 6, fields[5].drop(while: { $0 == " " }).hasPrefix("/"), fields[1].count == 4 else { return nil }
            let permissions = Array(fields[1])
            guard permissions[1] == "-", permissions[3] == "p" else { return nil }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), start < end
            else { return nil }
            return start..<end
        }
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
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return }
        let before = residentBytes()
        var refused = 0
        let mappings = readOnlyFileMappings(in: maps).map { (UnsafeMutableRawPointer(bitPattern: $0.lowerBound), Int($0.upperBound - $0.lowerBound)) }
        // Read-ahead off first: a page the serving threads fault back meanwhile is read alone, not
        // with the pages around it.
        for (start, length) in mappings { _ = madvise(start, length, MADV_RANDOM) }
        // Kernels before 5.4 do not know MADV_PAGEOUT: the pages then stay, nothing else changes.
        for (start, length) in mappings where madvise(start, length, MADV_PAGEOUT) != 0 { refused += 1 }
        logger.debug(
            "gave back the start-up pages",
            metadata: [
                "resident_before": "\(before ?? 0)", "resident_after": "\(residentBytes() ?? 0)", "mappings_refused": "\(refused)",
            ])
        #endif
    }

    /// The process's resident memory, from `/proc/self/statm` (in pages).
    private static func residentBytes() -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
