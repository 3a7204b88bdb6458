import LocalInference

extension ConfigurationLoader {
    /// The test suites' own variables (`SDGATE_TEST_POSTGRES_URL`, ...), which set nothing here.
    static let testVariablePrefix = "SDGATE_TEST_"

    /// A warning for each `SDGATE_` variable of `environment` that sets nothing: a misspelt one
    /// (`SDGATE_SERVER_PROT`) would otherwise leave its setting at the default without a word.
    /// Not refused, as a misspelt key of the file is: other programs, and secrets that `key_env`
    /// names, may share the prefix.
    static func ignoredVariables(in environment: [String: String], configuration: GatewayConfiguration) -> [String] {
        // The configured upstreams' and routes' variables are known by their shape; listed too,
        // so that a misspelt one is told what it meant.
        let named = NamedConfigurationKey.all.flatMap { key in
            key.render(configuration).keys.map { ConfigurationKey.environmentName(of: key.path($0)) }
        }
        // Besides the settings and the secrets the configuration names: the variable naming the
        // file, and the token the gateway gives the workers it spawns (which a compose file may
        // also set for the gateway, for its remote workers).
        let known =
            ConfigurationKey.all.map(\.environmentName) + named + configuration.secretSources
            + [GatewayConfiguration.fileVariable, WorkerCommand.tokenVariable]
        let knownSet = Set(known)
        return environment.keys.sorted().filter { variable in
            variable.hasPrefix("SDGATE_") && !variable.hasPrefix(testVariablePrefix) && !knownSet.contains(variable)
                && NamedConfigurationKey.path(forEnvironment: variable) == nil
        }.map { variable in
            let meant = closest(to: variable, among: known).map { " (did you mean \($0)?)" } ?? ""
            return "\(variable): no such setting; ignored\(meant)"
        }
    }
}
