import ArgumentParser
import Glibc

@main
struct SDGate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sdgate",
        abstract: "A self-hosted gateway that speaks the Segmind, StableDiffusionAPI, OpenAI Images and AUTOMATIC1111 APIs.",
        discussion: """
            Clients keep their code and change only the base URL. Every member gets an API key with a \
            credit budget; generation runs on the team's own GPUs or on the upstream service.

            Start it with `sdgate serve`. Configuration comes from built-in defaults, then the YAML file \
            given with --config, then SDGATE_... environment variables, then flags.
            """,
        subcommands: [
            Serve.self, KeysCommand.self, TeamsCommand.self, UsageCommand.self, LedgerCommand.self, ConfigCommand.self, CatalogCommand.self,
            BackupCommand.self,
        ],
        defaultSubcommand: nil
    )

    static func main() async {
        // What the gateway writes is the team's alone: the ledger (webhook secrets, prompts, input
        // images), its backups and the generated images. Other users of the machine read none of it.
        umask(0o077)
        await main(nil)
    }
}
