import ArgumentParser
import Foundation
import SDGateApp

/// The options every command that reads the configuration shares.
struct ConfigurationOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("YAML configuration file (see Config/sdgate.yaml).", valueName: "file"))
    var config: String?

    /// Loads the file (or `SDGATE_CONFIG`) and the environment; a problem ends the command with its message.
    func load() throws -> GatewayConfiguration {
        let environment = ProcessInfo.processInfo.environment
        do {
            return try GatewayConfiguration.load(file: config ?? environment[GatewayConfiguration.fileVariable], environment: environment)
        } catch {
            throw ValidationError("invalid configuration:\n\(error)")
        }
    }
}
