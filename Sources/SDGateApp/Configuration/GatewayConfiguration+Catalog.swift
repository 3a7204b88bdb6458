import Foundation
package import GatewayAPI

extension GatewayConfiguration {
    /// The catalog the gateway serves: `catalog_file` when one is set, else the copy of
    /// Config/models.yaml compiled into the binary, so that `sdgate serve` needs no file at all.
    package func loadCatalog() throws(CatalogError) -> ModelCatalog {
        catalogFile.isEmpty
            ? try ModelCatalog.load(yaml: Self.builtInCatalog, fileName: "the built-in catalog") : try ModelCatalog.load(file: catalogFile)
    }

    /// The effective catalog's text, as `sdgate catalog show` prints it.
    package func catalogText() throws(CatalogError) -> String {
        guard !catalogFile.isEmpty else { return Self.builtInCatalog }
        do {
            return try String(contentsOfFile: catalogFile, encoding: .utf8)
        } catch {
            throw CatalogError(description: "\(catalogFile): cannot be read")
        }
    }

    package static let builtInCatalog = String(decoding: PackageResources.models_yaml, as: UTF8.self)
}
