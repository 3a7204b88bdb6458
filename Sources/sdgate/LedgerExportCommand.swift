import ArgumentParser
import Foundation
import GenerationCore
import Ledger
import SDGateApp

/// `sdgate ledger export`: every movement of credits in a period, for the books.
struct LedgerExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every movement of credits (top-ups, adjustments, charges) of keys and teams in a period.",
        discussion: """
            One row per entry, oldest first: time (UTC), account type (key or team), account id and name, kind \
            (topup, adjustment or post, a request's charge), amount (negative for credits out), the hold a charge \
            settled, and its reason. A member's charge is one row for the key and one for its team. \
            --since and --until take a time back from now (30m, 24h, 7d) or a date (2026-11-01, 2026-11-01T12:00:00Z).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case csv
        case jsonl
    }

    @OptionGroup var configuration: ConfigurationOptions
    @Option(help: "Start of the period (default: 24h).") var since: String?
    @Option(help: "End of the period (default: now).") var until: String?
    @Option(help: "csv (RFC 4180, with a header row) or jsonl (one JSON object a line).") var format: Format = .csv

    /// Entries read at once: the export holds one page in memory, whatever the period.
    static let pageSize = 1000

    func run() async throws {
        let window = try UsageWindow.fromCommandLine(since: since, until: until)
        let ledger = try await GatewayApp.openLedger(configuration.load(), ifMissing: .refuse)
        let names = try await accountNames(in: ledger)
        let output = FileHandle.standardOutput
        if format == .csv { output.write(Data((LedgerExportRow.csvHeader + "\r\n").utf8)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var last: JournalPosition?
        while true {
            let page = try await ledger.journal(from: window.from, to: window.to, after: last, limit: Self.pageSize)
            var text = ""
            for entry in page {
                let row = LedgerExportRow(entry, name: names[entry.account] ?? "")
                text += format == .csv ? row.csvLine + "\r\n" : row.jsonLine(encoder) + "\n"
            }
            output.write(Data(text.utf8))
            guard page.count == Self.pageSize, let end = page.last else { return }
            last = end.position
        }
    }

    private func accountNames(in ledger: any Ledger) async throws -> [Account: String] {
        var names: [Account: String] = [:]
        for key in try await ledger.keys() { names[.key(key.id)] = key.name }
        for team in try await ledger.teams() { names[.team(team.id)] = team.name }
        return names
    }
}

/// One entry as the export writes it.
struct LedgerExportRow {
    static let header = ["time", "account_type", "account_id", "account_name", "kind", "amount", "hold_id", "reason"]

    let fields: [String]

    init(_ entry: JournalEntry, name: String) {
        let type =
            switch entry.account {
            case .key: "key"
            case .team: "team"
            }
        fields = [
            Self.time(entry.at), type, entry.account.id, name, entry.kind, entry.amount.description, entry.holdID ?? "", entry.reason,
        ]
    }

    var csvLine: String {
        fields.enumerated().map { index, field in CSVField.encode(field, guardingFormula: index != Self.amountColumn) }.joined(separator: ",")
    }

    static var csvHeader: String { header.map { CSVField.encode($0, guardingFormula: false) }.joined(separator: ",") }

    func jsonLine(_ encoder: JSONEncoder) -> String {
        let object = Dictionary(uniqueKeysWithValues: zip(Self.header, fields))
        return (try? encoder.encode(object)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    private static let amountColumn = 5
    /// ISO 8601 in UTC with milliseconds, as the ledger keeps time.
    private static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func time(_ timestamp: Timestamp) -> String {
        timeStyle.format(Date(timeIntervalSince1970: Double(timestamp) / 1000))
    }
}

/// One field of a CSV line (RFC 4180): a field with a comma, a quote or a line break is quoted,
/// its quotes doubled. A text that a spreadsheet would run as a formula (it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return: a reason or a name an admin typed) is written after a `'`,
/// so that opening the export cannot run it; amounts are numbers and keep their sign.
enum CSVField {
    static func encode(_ field: String, guardingFormula: Bool) -> String {
        // Bytes, not characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
        let startsFormula = field.utf8.first.map { Array("=+-@\t\r".utf8).contains($0) } ?? false
        let guarded = guardingFormula && startsFormula ? "'" + field : field
        guard guarded.utf8.contains(where: { Array(",\"\n\r".utf8).contains($0) }) else { return guarded }
        return "\"" + guarded.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
