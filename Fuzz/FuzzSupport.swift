// Helpers every fuzz target shares; Fuzz/run compiles this file into each of them.

#if canImport(Glibc)
import Glibc
#endif

/// The bytes as a C string literal body, shortened past 600 bytes: a trap message shows the input
/// that caused it, ready to paste into a regression test.
func escaped(_ bytes: some Collection<UInt8>) -> String {
    var text = ""
    for byte in bytes.prefix(600) {
        switch byte {
        case 0x0D: text += "\\r"
        case 0x0A: text += "\\n"
        case 0x09: text += "\\t"
        case 0x22: text += "\\\""
        case 0x5C: text += "\\\\"
        case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16, uppercase: true)
            text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    if bytes.count > 600 { text += "...(\(bytes.count - 600) more)" }
    return text
}

/// Writes a line to standard error unbuffered, so it lands next to libFuzzer's own output.
func printLine(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// Whether FUZZ_PRINT is set: the targets then print what each input came to.
let printsEachInput = getenv("FUZZ_PRINT") != nil
