package import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One line of the gateway's log, built in bytes in `StreamLogHandler`'s format:
/// `2026-12-05T10:00:00+0000 info sdgate: key=value ... [module] message`. The handler builds every
/// line with it, and the access log its lines without going through swift-log's metadata.
package struct LogLine {
    private(set) var bytes: [UInt8] = []

    /// Starts a line at the current second: its time, level and label.
    init(level: Logger.Level, label: String) {
        bytes.reserveCapacity(256)
        bytes.append(contentsOf: Self.timestamp())
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: level.rawValue.utf8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: label.utf8)
        bytes.append(UInt8(ascii: ":"))
    }

    /// One `key=value` field; callers add them in the order of their keys.
    mutating func field(_ key: String, _ value: String) {
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: key.utf8)
        bytes.append(UInt8(ascii: "="))
        appendEscaped(value)
    }

    /// Ends the line with the module that logged it and the message.
    mutating func finish(source: String, message: String) {
        bytes.append(contentsOf: " [".utf8)
        bytes.append(contentsOf: source.utf8)
        bytes.append(contentsOf: "] ".utf8)
        appendEscaped(message)
        bytes.append(UInt8(ascii: "\n"))
    }

    /// Text as it is, but for control characters, written `\u{1b}`: a value can carry words from
    /// outside (an upstream's error, which may echo a member's prompt), and a line feed or an escape
    /// sequence in it would forge a line of its own, or a terminal's screen.
    private mutating func appendEscaped(_ text: String) {
        // Almost every value has none: one look, then the bytes at once.
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            bytes.append(contentsOf: text.utf8)
            return
        }
        for byte in text.utf8 {
            if byte >= 0x20 && byte != 0x7F {
                bytes.append(byte)
            } else {
                bytes.append(contentsOf: "\\u{\(String(byte, radix: 16))}".utf8)
            }
        }
    }

    /// The local time to the second, as `StreamLogHandler` writes it: formatted once a second, not
    /// once a line (the time zone lookup and `strftime` cost more than the rest of an access line).
    static func timestamp() -> [UInt8] {
        let now = time(nil)
        return lastTimestamp.withLock { last in
            if last.second != now { last = (now, format(now)) }
            return last.text
        }
    }

    private static let lastTimestamp = Mutex<(second: time_t, text: [UInt8])>((0, []))

    private static func format(_ second: time_t) -> [UInt8] {
        var second = second
        var parts = tm()
        guard localtime_r(&second, &parts) != nil else { return Array("<unknown>".utf8) }
        var text = [CChar](repeating: 0, count: 32)
        let length = strftime(&text, text.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return text.prefix(length).map { UInt8(bitPattern: $0) }
    }
}
