package import Logging

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
        var line = LogLine(level: event.level, label: label)
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line.field(key, value.description) }
        line.finish(source: event.source, message: event.message.description)
        output.append(line)
    }
}
