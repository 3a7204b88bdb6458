import Foundation
import HTTPServer
import Yams

/// A configuration problem, with where it is: `sdgate.yaml:12: server.prot: unknown key`.
package struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    package let description: String
}

/// Builds a `GatewayConfiguration` from defaults, a YAML file and the environment, in that order.
enum ConfigurationLoader {
    /// A value and where it came from, for error messages.
    struct Setting {
        let path: String
        let value: String
        let origin: String
    }

    static func load(yaml: String?, fileName: String, environment: [String: String]) throws(ConfigurationError) -> GatewayConfiguration {
        var configuration = GatewayConfiguration()
        var settings = try yaml.map { text throws(ConfigurationError) in try fileSettings(text, fileName: fileName) } ?? []
        for key in ConfigurationKey.all {
            if let value = environment[key.environmentName] {
                settings.append(Setting(path: key.path, value: value, origin: key.environmentName))
            }
        }
        for (variable, value) in environment.sorted(by: { $0.key < $1.key }) {
            if let path = NamedConfigurationKey.path(forEnvironment: variable) {
                settings.append(Setting(path: path, value: value, origin: variable))
            }
        }
        var problems: [String] = []
        var origins: [String: String] = [:]
        for setting in settings {
            origins[setting.path] = setting.origin
            do {
                if let key = ConfigurationKey.named(setting.path) {
                    try key.apply(&configuration, setting.value)
                } else if let (key, name) = NamedConfigurationKey.match(setting.path) {
                    try key.apply(&configuration, name, setting.value)
                } else {
                    problems.append("\(setting.origin): \(setting.path): unknown key\(suggestion(for: setting.path))")
                }
            } catch {
                problems.append("\(setting.origin): \(setting.path): \(error.message)")
            }
        }
        if problems.isEmpty {
            problems =
                checkTLS(&configuration) + checkUpstreams(&configuration, environment: environment, origins: origins)
                + checkLocal(configuration, origins: origins) + checkAlerts(configuration, origins: origins) + checkOutputs(configuration)
        }
        guard problems.isEmpty else { throw ConfigurationError(description: problems.joined(separator: "\n")) }
        configuration.warnings = ignoredVariables(in: environment, configuration: configuration)
        return configuration
    }

    /// The certificate and the key go together, and both must be readable; then the server has TLS.
    static func checkTLS(_ configuration: inout GatewayConfiguration) -> [String] {
        let files = [("server.tls.certificate", configuration.tlsCertificate), ("server.tls.private_key", configuration.tlsPrivateKey)]
        switch files.filter({ !$0.1.isEmpty }).count {
        case 0:
            return []
        case 1:
            return ["server.tls.certificate and server.tls.private_key go together: set both for HTTPS, or neither"]
        default:
            let unreadable = files.filter { !FileManager.default.isReadableFile(atPath: $0.1) }
            guard unreadable.isEmpty else { return unreadable.map { "\($0.0): '\($0.1)' cannot be read" } }
            let tls = HTTPServer.Configuration.TLS(
                certificateFile: configuration.tlsCertificate, privateKeyFile: configuration.tlsPrivateKey,
                strictTransportSecurityMaxAge: configuration.hstsMaxAge)
            // Loaded as the server will load them: `config check` passed files that `serve` refused.
            do {
                try tls.check()
            } catch {
                return ["server.tls: \(error.description)"]
            }
            configuration.server.tls = tls
            return []
        }
    }

    /// Images in the database need one the replicas share.
    static func checkOutputs(_ configuration: GatewayConfiguration) -> [String] {
        configuration.outputStore == .database && !configuration.ledgerIsPostgres ? [outputsNeedPostgres] : []
    }

    static let outputsNeedPostgres = "outputs.store: database needs a PostgreSQL ledger (ledger.database: postgres://...)"

    /// Flattens the YAML mappings into dotted paths, each with the line it is on.
    static func fileSettings(_ text: String, fileName: String) throws(ConfigurationError) -> [Setting] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationError(description: "\(fileName): \(error)")
        }
        guard let root else { return [] }
        guard case .mapping = root else {
            throw ConfigurationError(description: "\(fileName):\(root.mark?.line ?? 1): the top level must be a mapping of keys")
        }
        var settings: [Setting] = []
        var problems: [String] = []
        func walk(_ node: Node, _ path: String) {
            let origin = "\(fileName):\(node.mark?.line ?? 0)"
            switch node {
            case .mapping(let mapping):
                for (key, value) in mapping {
                    guard let name = key.string else {
                        problems.append("\(fileName):\(key.mark?.line ?? 0): keys must be plain names")
                        continue
                    }
                    walk(value, path.isEmpty ? name : "\(path).\(name)")
                }
            case .scalar(let scalar):
                // An empty value (`key:`) means "keep the default".
                if !(scalar.string.isEmpty && scalar.style == .plain) {
                    settings.append(Setting(path: path, value: scalar.string, origin: origin))
                }
            case .sequence, .alias:
                problems.append("\(origin): \(path): expected a single value")
            }
        }
        walk(root, "")
        guard problems.isEmpty else { throw ConfigurationError(description: problems.joined(separator: "\n")) }
        return settings
    }

    /// "did you mean ..." for a key one or two edits from a known one.
    private static func suggestion(for path: String) -> String {
        closest(to: path, among: ConfigurationKey.all.map(\.path)).map { " (did you mean '\($0)'?)" } ?? ""
    }

    /// The one of `names` one or two edits from `name`, if any: what a typo most likely meant.
    static func closest(to name: String, among names: [String]) -> String? {
        guard let close = names.min(by: { editDistance($0, name) < editDistance($1, name) }), editDistance(close, name) <= 2 else {
            return nil
        }
        return close
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension GatewayConfiguration {
    /// The variable naming the configuration file when no `--config` is given.
    package static let fileVariable = "SDGATE_CONFIG"

    /// Loads `file` (if any) over the defaults, then applies `SDGATE_...` variables from `environment`.
    package static func load(file: String?, environment: [String: String]) throws(ConfigurationError) -> GatewayConfiguration {
        guard let file else { return try ConfigurationLoader.load(yaml: nil, fileName: "", environment: environment) }
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigurationError(description: "\(file): cannot be read")
        }
        return try ConfigurationLoader.load(yaml: text, fileName: file, environment: environment)
    }

    /// Every key with its effective value, one `path: value` line each, in the file's layout order.
    package var rendered: String {
        let named = NamedConfigurationKey.all.flatMap { key in key.render(self).map { (path: key.path($0.key), value: $0.value) } }
            .sorted { $0.path < $1.path }
        return (ConfigurationKey.all.map { "\($0.path): \($0.render(self))" } + named.map { "\($0.path): \($0.value)" })
            .joined(separator: "\n")
    }
}
