import ArgumentParser
import Foundation
import GatewayAPI
import SDGateApp

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with the configuration.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration and the model catalog, and print every effective value.",
            discussion: "Exits non-zero, naming the file and line, if a key is unknown, a value is invalid or the catalog is broken."
        )

        @OptionGroup var options: ConfigurationOptions

        func run() throws {
            let configuration = try options.load()
            for warning in configuration.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            let catalog: ModelCatalog
            do {
                catalog = try configuration.loadCatalog()
            } catch {
                throw ValidationError("invalid model catalog:\n\(error)")
            }
            do {
                _ = try configuration.routes(in: catalog)
            } catch {
                throw ValidationError("invalid configuration:\n\(error)")
            }
            let missing = configuration.missingUpstreamKeys + configuration.local.missingFiles
            if !missing.isEmpty {
                throw ValidationError("invalid configuration:\n" + missing.joined(separator: "\n"))
            }
            print(configuration.rendered)
            print("models: \(catalog.models.keys.sorted().joined(separator: ", "))")
        }
    }
}
