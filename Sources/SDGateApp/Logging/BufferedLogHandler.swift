package import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// swift-log's handler for the gateway's log: lines in `StreamLogHandler`'s format (`2026-12-05T10:00:00+0000
/// info sdgate: key=value ... [module] message`), handed to a `BufferedLogOutput` instead of written
/// and flushed one by one.
package struct BufferedLogHandler: LogHandler {
    package var logLevel: Logger.Level = .info
    package var metadata: Logger.Metadata = [:]
    private let label: String
    private let output: BufferedLogOutput

    package init(label: String, output: BufferedLogOutput) {
        self.label = label
        self.output = output
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged = merged.isEmpty ? extra : merged.merging(extra) { $1 } }
        if let error = event.error { merged["error"] = "\(error)" }
        let pairs = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        output.append("\(Self.timestamp()) \(event.level) \(label):\(pairs) [\(event.source)] \(event.message)\n")
    }

    /// The local time to the second, as `StreamLogHandler` writes it: formatted once a second, not
    /// once a line (the time zone lookup and `strftime` cost more than the rest of an access line).
    static func timestamp() -> String {
        let now = time(nil)
        return lastTimestamp.withLock { last in
            if last.second != now { last = (now, format(now)) }
            return last.text
        }
    }

    private static let lastTimestamp = Mutex<(second: time_t, text: String)>((0, ""))

    private static func format(_ second: time_t) -> String {
        var second = second
        var parts = tm()
        guard localtime_r(&second, &parts) != nil else { return "<unknown>" }
        var text = [CChar](repeating: 0, count: 32)
        let length = strftime(&text, text.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: text.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
