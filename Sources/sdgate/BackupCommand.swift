import ArgumentParser
import Ledger
import SDGateApp

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the SQLite ledger to a new file, consistently, while the gateway runs.",
        discussion: """
            The copy holds keys, teams, credits, holds, usage and jobs as they were at one moment. Restore by \
            stopping the gateway and putting the copy in the ledger's place (ledger.database). A PostgreSQL \
            ledger is backed up with PostgreSQL's own tools (pg_dump).
            """
    )

    @OptionGroup var options: ConfigurationOptions

    @Option(name: .customLong("to"), help: "The new file to write; an existing file is never overwritten.")
    var destination: String

    func run() async throws {
        let configuration = try options.load()
        let location = configuration.ledgerPath
        guard !configuration.ledgerIsPostgres else {
            throw ValidationError("the ledger is in PostgreSQL: back it up with pg_dump (for example pg_dump --format=custom)")
        }
        guard let ledger = try await GatewayApp.openLedger(configuration, ifMissing: .refuse) as? SQLiteLedger else {
            throw ValidationError("the ledger at \(location) is not a SQLite file")
        }
        try ledger.backup(to: destination)
        print("ledger copied to \(destination)")
    }
}
