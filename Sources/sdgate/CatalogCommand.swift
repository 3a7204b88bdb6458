import ArgumentParser
import SDGateApp

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Work with the model catalog.",
        subcommands: [Show.self]
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the catalog the gateway serves: catalog_file's, or the one built into the binary.",
            discussion: "A copy to start a catalog of your own from: sdgate catalog show > models.yaml, then set catalog_file."
        )

        @OptionGroup var options: ConfigurationOptions

        func run() throws {
            let configuration = try options.load()
            do {
                _ = try configuration.loadCatalog()
                print(try configuration.catalogText(), terminator: "")
            } catch {
                throw ValidationError("invalid model catalog:\n\(error)")
            }
        }
    }
}
