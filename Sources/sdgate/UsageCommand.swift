import ArgumentParser
import GenerationCore
import Ledger
import SDGateApp

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage", abstract: "Show generation requests and what they cost, with totals per key and per dialect.",
        discussion: "--since and --until take a time back from now (30m, 24h, 7d) or a date (2026-11-01, 2026-11-01T12:00:00Z).")

    @OptionGroup var options: LedgerOptions
    @Option(help: "Only this key's requests.") var key: String?
    @Option(help: "Only the requests of this team's keys (id or name).") var team: String?
    @Option(help: "Start of the period (default: 24h).") var since: String?
    @Option(help: "End of the period (default: now).") var until: String?
    @Option(
        help: """
            List the latest N rows (1 to \(UsageReport.maxRequests), the default): a request each, or the requests that held \
            nothing of one minute, counted; the totals count them all.
            """)
    var limit: Int = UsageReport.maxRequests

    func validate() throws {
        guard (1...UsageReport.maxRequests).contains(limit) else {
            throw ValidationError("--limit: expected a whole number from 1 to \(UsageReport.maxRequests)")
        }
    }

    func run() async throws {
        let window = try UsageWindow.fromCommandLine(since: since, until: until)
        let ledger = try await options.open()
        let teamID = try await TeamsCommand.teamID(team, in: ledger)
        let report = try await UsageReport.read(from: ledger, scope: window.scope(keyID: key, teamID: teamID), window: window, latest: limit)
        try options.emit(report) { report.text }
    }
}

extension UsageWindow {
    /// The period `--since` and `--until` name, from now; a refusal in the command line's words.
    static func fromCommandLine(since: String?, until: String?) throws -> UsageWindow {
        do {
            return try UsageWindow(since: since, until: until, now: SystemWallClock().millisecondsNow)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
