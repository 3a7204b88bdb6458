import CSystemShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The binary's constant tables when they are mapped writable. The static build's linker makes
/// its `.rodata` writable (one input section flagged so makes the whole output section so), which
/// puts about 37 MB of constants in the mapping of the binary's variables: a mapping the process
/// writes, which the release cannot drop whole. Its pages still hold the file's bytes, since
/// nothing writes constants (`.rodata` has no relocations either), so each page is dropped unless
/// `/proc/self/pagemap` shows the process's own copy of it.
extension StartupPages {
    /// The binary's `.rodata`, in this process's addresses, when its section is flagged writable;
    /// nil when it is read-only (the read-only mappings hold it) or the file cannot be read.
    /// `executable` is for tests: the load address is always this process's.
    package static func writableConstants(executable: String = "/proc/self/exe") -> Range<UInt>? {
        #if os(Linux)
        guard let file = FileHandle(forReadingAtPath: executable) else { return nil }
        defer { try? file.close() }
        func bytes(at offset: UInt64, count: Int) -> [UInt8]? {
            guard (try? file.seek(toOffset: offset)) != nil, let data = try? file.read(upToCount: count), data.count == count
            else { return nil }
            return Array(data)
        }
        // A 64-bit little-endian ELF file: its section headers (64 bytes each) and their names.
        guard let header = bytes(at: 0, count: 64), header.starts(with: [0x7F, 0x45, 0x4C, 0x46, 2, 1]) else { return nil }
        let sectionsAt = littleEndian(header, at: 0x28, size: 8), entrySize = Int(littleEndian(header, at: 0x3A, size: 2))
        let count = Int(littleEndian(header, at: 0x3C, size: 2)), namesIndex = Int(littleEndian(header, at: 0x3E, size: 2))
        guard entrySize == 64, count > 0, namesIndex < count, let table = bytes(at: sectionsAt, count: entrySize * count) else { return nil }
        func field(_ index: Int, _ offset: Int, _ size: Int) -> UInt64 { littleEndian(table, at: index * entrySize + offset, size: size) }
        let namesSize = field(namesIndex, 0x20, 8)
        guard namesSize <= 1 << 20, let names = bytes(at: field(namesIndex, 0x18, 8), count: Int(namesSize)) else { return nil }
        let wanted = Array(".rodata\0".utf8)
        guard
            let index = (0..<count).first(where: { index in
                let name = Int(field(index, 0, 4))
                return name + wanted.count <= names.count && names[name..<name + wanted.count].elementsEqual(wanted)
            }),
            field(index, 0x08, 8) & 1 != 0  // SHF_WRITE
        else { return nil }
        // Where the binary was loaded: where its program headers are (AT_PHDR), less where the file
        // says they go.
        let address = field(index, 0x10, 8), size = field(index, 0x20, 8), programHeadersAt = littleEndian(header, at: 0x20, size: 8)
        let programHeaders = UInt64(getauxval(UInt(AT_PHDR)))
        guard programHeaders != 0, programHeaders >= programHeadersAt else { return nil }
        let (start, overflowed) = (programHeaders - programHeadersAt).addingReportingOverflow(address)
        guard !overflowed, size > 0, size <= UInt64(UInt.max) - start else { return nil }
        return UInt(start)..<UInt(start + size)
        #else
        return nil
        #endif
    }

    /// The runs of whole pages of `range` that still hold the file's bytes: a page the process wrote
    /// is its own copy (`/proc/self/pagemap`: present, and not a page of the file), and dropping it
    /// would lose what was written.
    static func unwrittenPages(of range: Range<UInt>) -> [Range<UInt>] {
        #if os(Linux)
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let first = range.lowerBound / pageSize + (range.lowerBound % pageSize == 0 ? 0 : 1), end = range.upperBound / pageSize
        guard first < end, let pagemap = FileHandle(forReadingAtPath: "/proc/self/pagemap") else { return [] }
        defer { try? pagemap.close() }
        let length = Int(end - first) * 8
        guard (try? pagemap.seek(toOffset: UInt64(first) * 8)) != nil, let data = try? pagemap.read(upToCount: length), data.count == length
        else { return [] }
        let entries = Array(data)
        var runs: [Range<UInt>] = [], runStart: UInt?
        for page in first..<end {
            let entry = littleEndian(entries, at: Int(page - first) * 8, size: 8)
            // Bit 63: the page is present; bit 61: it is a page of the file.
            if entry & (1 << 63) != 0 && entry & (1 << 61) == 0 {
                if let from = runStart { runs.append(from * pageSize..<page * pageSize) }
                runStart = nil
            } else if runStart == nil {
                runStart = page
            }
        }
        if let from = runStart { runs.append(from * pageSize..<end * pageSize) }
        return runs
        #else
        return []
        #endif
    }

    private static func littleEndian(_ bytes: [UInt8], at offset: Int, size: Int) -> UInt64 {
        (0..<size).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
    }
}
