package import GatewayAPI
package import UpstreamProxy

extension GatewayConfiguration {
    /// One upstream as the configuration describes it (`upstreams.<name>.*`). The loader checks
    /// that dialect, base URL and key variable are given and that the variable is set.
    package struct UpstreamSettings: Sendable {
        package var dialect: Upstream.Dialect?
        package var baseURL: String?
        /// The name of the environment variable holding the team's key for this upstream.
        package var keyVariable: String?
        /// The key itself, read from that variable when the configuration is loaded.
        package var key: UpstreamKey?
        package var deadline: Duration = .seconds(120)
        package var poolSize = 8

        package init() {}
    }

    /// An upstream whose key variable is not set, in words; what `serve` refuses to start with.
    package var missingUpstreamKeys: [String] {
        upstreams.sorted { $0.key < $1.key }.compactMap { name, settings in
            guard settings.key == nil, let variable = settings.keyVariable else { return nil }
            return "upstreams.\(name).key_env: the environment variable \(variable) is not set"
        }
    }

    /// The configured upstreams, complete ones only (the loader refuses incomplete ones).
    package var configuredUpstreams: [Upstream] {
        upstreams.sorted { $0.key < $1.key }.compactMap { name, settings in
            guard let dialect = settings.dialect, let baseURL = settings.baseURL, let key = settings.key else { return nil }
            return Upstream(name: name, dialect: dialect, baseURL: baseURL, key: key, deadline: settings.deadline, poolSize: settings.poolSize)
        }
    }

    /// The longest a generation call can take once it reached its backend: the longest deadline of
    /// an upstream or of the local workers, and time to charge it.
    package var longestGeneration: Duration {
        let deadlines = configuredUpstreams.map(\.deadline) + (local.isConfigured ? [local.pool.deadline] : [])
        return (deadlines.max() ?? .zero) + .seconds(10)
    }

    /// The routes by catalog slug. Throws for a route whose model the catalog lacks.
    package func routes(in catalog: ModelCatalog) throws(ConfigurationError) -> [String: [String]] {
        let models = Dictionary(catalog.models.keys.map { (Self.routeName($0), $0) }) { first, _ in first }
        var resolved: [String: [String]] = [:]
        for (name, upstreams) in routes.sorted(by: { $0.key < $1.key }) {
            guard let model = models[Self.routeName(name)] else {
                throw ConfigurationError(
                    description: "routes.\(name): no model '\(name)' in \(catalogFile.isEmpty ? "the built-in catalog" : catalogFile)")
            }
            resolved[model] = upstreams
        }
        return resolved
    }

    /// A route's model name compared as an environment variable can spell it: `sd1.5-img2img`,
    /// `SD1_5_IMG2IMG` (from `SDGATE_ROUTES_SD1_5_IMG2IMG`) and `sd1_5_img2img` are one model.
    static func routeName(_ model: String) -> String {
        String(model.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }
}
