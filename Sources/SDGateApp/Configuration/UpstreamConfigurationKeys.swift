import Foundation
import GatewayAPI
import UpstreamProxy

/// Keys under a name the configuration chooses: `upstreams.<name>.<field>` and `routes.<model>`.
/// In the environment the name sits between the section and the field:
/// `SDGATE_UPSTREAMS_SEGMIND_BASE_URL`, `SDGATE_ROUTES_SDXL_IMG2IMG`.
struct NamedConfigurationKey: Sendable {
    let section: String
    /// The field after the name; nil where the name is the last part (`routes.<model>`).
    let field: String?
    let summary: String
    let apply: @Sendable (inout GatewayConfiguration, _ name: String, _ value: String) throws(ConfigurationValueError) -> Void
    /// The value of each name that has one.
    let render: @Sendable (GatewayConfiguration) -> [String: String]

    func path(_ name: String) -> String {
        field.map { "\(section).\(name).\($0)" } ?? "\(section).\(name)"
    }

    /// The name in a dotted path of this key, if it is one.
    func name(inPath path: String) -> String? {
        guard path.hasPrefix(section + ".") else { return nil }
        var rest = path.dropFirst(section.count + 1)
        if let field {
            guard rest.hasSuffix("." + field) else { return nil }
            rest = rest.dropLast(field.count + 1)
            if rest.contains(".") { return nil }
        }
        return rest.isEmpty ? nil : String(rest)
    }

    /// The name in an environment variable of this key, if it is one, lowercased.
    func name(inEnvironment variable: String) -> String? {
        let prefix = "SDGATE_\(section.uppercased())_"
        guard variable.hasPrefix(prefix) else { return nil }
        var rest = variable.dropFirst(prefix.count)
        if let field {
            let suffix = "_" + field.uppercased()
            guard rest.hasSuffix(suffix) else { return nil }
            rest = rest.dropLast(suffix.count)
        }
        return rest.isEmpty ? nil : rest.lowercased()
    }

    static func upstream(
        _ field: String, _ summary: String,
        apply: @escaping @Sendable (inout GatewayConfiguration.UpstreamSettings, String) throws(ConfigurationValueError) -> Void,
        render: @escaping @Sendable (GatewayConfiguration.UpstreamSettings) -> String?
    ) -> Self {
        Self(
            section: "upstreams", field: field, summary: summary,
            apply: { config, name, text throws(ConfigurationValueError) in
                guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
                    throw ConfigurationValueError("an upstream's name is lowercase letters, digits and _")
                }
                guard name != GatewayConfiguration.localRoute else { throw ConfigurationValueError("'local' is the name of the local workers") }
                try apply(&config.upstreams[name, default: .init()], text)
            }, render: { config in config.upstreams.compactMapValues(render) })
    }

    static let all: [NamedConfigurationKey] = [
        .upstream(
            "dialect", "segmind or modelslab: the wire format the upstream speaks",
            apply: { settings, text throws(ConfigurationValueError) in
                guard let dialect = Upstream.Dialect(rawValue: text.lowercased()) else {
                    throw ConfigurationValueError("must be one of \(Upstream.Dialect.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                settings.dialect = dialect
            }, render: { $0.dialect?.rawValue }),
        .upstream(
            "base_url", "where the upstream's API lives, without the version path",
            apply: { settings, text throws(ConfigurationValueError) in
                guard let url = URLComponents(string: text), url.scheme == "http" || url.scheme == "https", url.host?.isEmpty == false,
                    url.query == nil
                else {
                    throw ConfigurationValueError("expected an http:// or https:// URL such as https://api.segmind.com, got '\(text)'")
                }
                try ConfigurationValue.checkPort(of: url, in: text)
                settings.baseURL = text.hasSuffix("/") ? String(text.dropLast()) : text
            },
            render: { settings in
                // A password in the URL is a secret.
                guard let text = settings.baseURL, var url = URLComponents(string: text), url.password != nil else { return settings.baseURL }
                url.password = "redacted"
                return url.string
            }),
        .upstream(
            "key_env", "the environment variable holding the team's key for the upstream (never the key itself)",
            apply: { settings, text throws(ConfigurationValueError) in
                guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                    throw ConfigurationValueError("expected the name of an environment variable, such as SEGMIND_API_KEY")
                }
                settings.keyVariable = text
            }, render: { settings in settings.keyVariable.map { "\($0) (\(settings.key == nil ? "not set" : "set, redacted"))" } }),
        .upstream(
            "deadline", "the most one generation may take there, polling included (504 beyond)",
            apply: { settings, text throws(ConfigurationValueError) in
                settings.deadline = try ConfigurationValue.duration(text, in: .milliseconds(100) ... .seconds(3600))
            }, render: { ConfigurationValue.renderDuration($0.deadline) }),
        .upstream(
            "pool_size", "connections kept open to the upstream",
            apply: { settings, text throws(ConfigurationValueError) in
                settings.poolSize = try ConfigurationValue.integer(text, in: 1...1024)
            }, render: { String($0.poolSize) }),
        NamedConfigurationKey(
            section: "routes", field: nil, summary: "the backends that serve a model (local, upstream names), in the order they are tried",
            apply: { config, model, text throws(ConfigurationValueError) in
                let names = text.split(separator: ",").map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
                guard !names.isEmpty else { throw ConfigurationValueError("expected local or upstream names separated by commas") }
                guard Set(names).count == names.count else { throw ConfigurationValueError("names a backend twice") }
                config.routes[model] = names
            }, render: { $0.routes.mapValues { $0.joined(separator: ", ") } }),
    ]

    /// The key and name a dotted path is, if any.
    static func match(_ path: String) -> (key: NamedConfigurationKey, name: String)? {
        for key in all { if let name = key.name(inPath: path) { return (key, name) } }
        return nil
    }

    /// The dotted path an environment variable sets, if it is one of these keys.
    static func path(forEnvironment variable: String) -> String? {
        for key in all { if let name = key.name(inEnvironment: variable) { return key.path(name) } }
        return nil
    }
}

extension ConfigurationLoader {
    /// What the upstream keys cannot check one value at a time: each upstream is complete, each
    /// route names configured upstreams. Reads the upstreams' keys from `environment`.
    static func checkUpstreams(
        _ configuration: inout GatewayConfiguration, environment: [String: String],
        origins: [String: String]
    ) -> [String] {
        var problems: [String] = []
        for name in configuration.upstreams.keys.sorted() {
            let origin = origins.filter { $0.key.hasPrefix("upstreams.\(name).") }.min { $0.key < $1.key }?.value ?? ""
            var settings = configuration.upstreams[name]!
            for (field, missing) in [
                ("dialect", settings.dialect == nil), ("base_url", settings.baseURL == nil), ("key_env", settings.keyVariable == nil),
            ]
            where missing {
                problems.append("\(origin): upstreams.\(name).\(field): is required")
            }
            // Only `serve` and `config check` need the key (`missingUpstreamKeys`); the key and
            // ledger commands read the same file without it.
            if let variable = settings.keyVariable, let key = environment[variable], !key.isEmpty {
                settings.key = UpstreamKey(key)
            }
            configuration.upstreams[name] = settings
        }
        for (model, names) in configuration.routes.sorted(by: { $0.key < $1.key }) {
            for name in names where name != GatewayConfiguration.localRoute && configuration.upstreams[name] == nil {
                problems.append("\(origins["routes.\(model)"] ?? ""): routes.\(model): no upstream named '\(name)'")
            }
        }
        return problems
    }
}
