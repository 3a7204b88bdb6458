import ArgumentParser
import SDGateApp

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with the configuration.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration and print every effective value.",
            discussion: "Exits non-zero, naming the file and line, if a key is unknown or a value is invalid."
        )

        @OptionGroup var options: ConfigurationOptions

        func run() throws {
            print(try options.load().rendered)
        }
    }
}
