import Foundation
import TestSupport
import Testing

/// `sdgate serve` configured with upstreams and routes, as a team runs it: a YAML file, the
/// upstream keys in environment variables, its own data folder (or a shared database) and admin
/// token. The key and ledger commands run on the same configuration.
struct ProxiedGateway: Sendable {
    struct UpstreamEntry: Sendable {
        var name: String
        var dialect: String
        var baseURL: String
        var key: String
        var deadline = "30s"
    }

    let gateway: RunningGateway
    let environment: [String: String]

    var port: Int { gateway.port }
    var log: String { gateway.log }

    /// The configuration file and environment of a gateway with these upstreams and routes.
    static func environment(
        upstreams: [UpstreamEntry], routes: [String: [String]], extraYAML: String = "",
        base: [String: String] = [:]
    ) throws -> [String: String] {
        var yaml = "upstreams:\n"
        var environment = base
        for upstream in upstreams {
            let variable = "TEAM_KEY_\(upstream.name.uppercased())"
            yaml += """
                  \(upstream.name):
                    dialect: \(upstream.dialect)
                    base_url: \(upstream.baseURL)
                    key_env: \(variable)
                    deadline: \(upstream.deadline)
                    pool_size: 4

                """
            environment[variable] = upstream.key
        }
        yaml += "routes:\n" + routes.map { "  \($0.key): \($0.value.joined(separator: ", "))\n" }.joined() + extraYAML
        let folder = Scratch.path("sdgate")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("sdgate.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        environment["SDGATE_CONFIG"] = file.path
        if environment["SDGATE_LEDGER_DATABASE"] == nil { environment["SDGATE_DATA_DIR"] = folder.appendingPathComponent("data").path }
        environment["SDGATE_ADMIN_TOKEN"] = environment["SDGATE_ADMIN_TOKEN"] ?? "proxy-test-admin-token"
        environment["SDGATE_CATALOG_FILE"] = Repository.path("Config/models.yaml")
        return environment
    }

    static func start(upstreams: [UpstreamEntry], routes: [String: [String]], extraYAML: String = "") async throws -> ProxiedGateway {
        try await start(environment: environment(upstreams: upstreams, routes: routes, extraYAML: extraYAML))
    }

    static func start(environment: [String: String], port: Int = 0) async throws -> ProxiedGateway {
        ProxiedGateway(gateway: try await RunningGateway.start(environment: environment, port: port), environment: environment)
    }

    /// The same gateway again, on the same configuration, ledger and port (the URLs it gave out
    /// before lead to it again).
    func restarted() async throws -> ProxiedGateway {
        try await Self.start(environment: environment, port: port)
    }

    func stop() async throws -> Int32 {
        try await gateway.stop(signal: SIGTERM)
    }

    func command(_ arguments: [String]) async throws -> Command.Result {
        try await RunningGateway.run(arguments, environment: environment)
    }

    /// A member key funded with `credits`: its id and secret.
    func createKey(name: String, credits: String) async throws -> (id: String, secret: String) {
        let created = try await command(["keys", "create", "--name", name, "--credits", credits, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any]
        return (try #require(object?["id"] as? String, "\(created.errors)"), try #require(object?["secret"] as? String))
    }

    /// A key's available and held credits, as `sdgate keys show` reports them.
    func credits(of id: String) async throws -> (available: String, held: String) {
        let shown = try await command(["keys", "show", id, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any]
        return (object?["available"] as? String ?? "?", object?["held"] as? String ?? "?")
    }

    /// `sdgate usage --json`: the requests, oldest first.
    func usage() async throws -> [[String: Any]] {
        let shown = try await command(["usage", "--json"])
        return (try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any])?["requests"] as? [[String: Any]] ?? []
    }

    func verify() async throws -> Command.Result {
        try await command(["ledger", "verify"])
    }

    /// One call of the official Segmind SDK; its outcome as the client script prints it.
    func sdk(_ secret: String, _ slug: String, _ parameters: [String: Any]) async throws -> [String: Any] {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: parameters), as: UTF8.self)
        let result = try await Command.run("python3", [Repository.path("Tests/SDGateTests/Clients/segmind_call.py"), "\(port)", secret, slug, json])
        #expect(result.status == 0, "\(result.errors)")
        return try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
    }
}
