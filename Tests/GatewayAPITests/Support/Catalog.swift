import GatewayAPI
import TestSupport

/// The catalog sdgate ships, loaded as the gateway loads it.
enum ShippedCatalog {
    static let path = Repository.path("Config/models.yaml")
    static let catalog: ModelCatalog = {
        do { return try ModelCatalog.load(file: path) } catch { fatalError("the shipped catalog does not load: \(error)") }
    }()
}
