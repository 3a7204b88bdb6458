import Foundation

/// The PostgreSQL server the tests may use, named by `SDGATE_TEST_POSTGRES_URL` (`.ci/run` starts
/// one and sets it). Unset or empty, the cases that need it are not run.
package enum TestPostgres {
    package static let variable = "SDGATE_TEST_POSTGRES_URL"

    package static var url: String? { url(in: ProcessInfo.processInfo.environment) }

    package static func url(in environment: [String: String]) -> String? {
        guard let url = environment[variable], !url.isEmpty else { return nil }
        return url
    }

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    /// The URL of a new, empty database on that server, its name `prefix` and a random suffix.
    package static func freshDatabase(_ prefix: String) async throws -> String {
        guard let base = url, var components = URLComponents(string: base) else {
            throw Failure(description: "\(variable) names no PostgreSQL server")
        }
        let name = "\(prefix)_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let created = try await Command.run("psql", [base, "-q", "-c", "CREATE DATABASE \(name)"])
        guard created.status == 0 else { throw Failure(description: "CREATE DATABASE \(name): \(created.errors)") }
        components.path = "/" + name
        guard let database = components.string else { throw Failure(description: "\(base) with the path \(name)") }
        return database
    }
}
