import Foundation
import Ledger
import TestSupport
import Testing

/// `sdgate keys`, `ledger verify` and `usage` on a new ledger, then a real key through `sdgate serve`.
@Suite("sdgate keys and ledger commands", .serialized)
struct KeysCommandTests {
    /// A data folder that holds a new, empty ledger, as the first `sdgate serve` leaves it: the
    /// commands other than `serve` work only on a ledger that is there.
    static func environment() throws -> [String: String] {
        let folder = Scratch.path("sdgate")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        _ = try SQLiteLedger(path: folder.appendingPathComponent("sdgate.sqlite").path)
        return ["SDGATE_DATA_DIR": folder.path]
    }

    static func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    /// The data folder and the ledger, with its write-ahead log, are the owner's alone: the
    /// ledger keeps webhook secrets, prompts and input images. They were readable by every user.
    @Test func theLedgerIsTheOwnersAlone() async throws {
        let folder = Scratch.path("sdgate").path
        let environment = ["SDGATE_DATA_DIR": folder]
        let gateway = try await RunningGateway.start(environment: environment)
        let created = try await RunningGateway.run(["keys", "create", "--name", "alice", "--credits", "1"], environment: environment)
        #expect(created.status == 0, "\(created.errors)")
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("sdgate.sqlite") }
        #expect(files.contains("sdgate.sqlite"))
        for path in [folder] + files.map({ folder + "/" + $0 }) {
            let permissions = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            #expect(permissions & 0o077 == 0, "\(path): \(String(permissions, radix: 8))")
        }
    }

    /// What the admin API refuses, the command line refuses too, before anything is written: an
    /// empty or overlong name or reason, negative credits to start with (taken as none, silently).
    /// Only `serve` makes a ledger: any other command on a path where there is none (a mistyped
    /// `ledger.database`, a backup to check that is not there, the wrong folder) fails, names the
    /// path and creates nothing; `ledger verify` once said "ledger verified" of the empty ledger it made.
    @Test func everyCommandButServeRefusesALedgerThatIsNotThereAndCreatesNothing() async throws {
        let folder = Scratch.path("nothing-here")
        let commands = [
            ["ledger", "verify"], ["ledger", "export"], ["keys", "list"], ["keys", "create", "--name", "alice", "--credits", "1"],
            ["keys", "show", "kaaaaaaaa"], ["teams", "list"], ["teams", "create", "--name", "design"], ["usage"],
            ["backup", "--to", Scratch.path("copy", pathExtension: "sqlite").path],
        ]
        let places: [(variable: String, path: String)] = [
            ("SDGATE_DATA_DIR", folder.path + "/data"), ("SDGATE_LEDGER_DATABASE", folder.path + "/backups/sdgate.sqlite"),
        ]
        for place in places {
            let ledger = place.variable == "SDGATE_DATA_DIR" ? place.path + "/sdgate.sqlite" : place.path
            for arguments in commands {
                let refused = try await RunningGateway.run(arguments, environment: [place.variable: place.path])
                #expect(refused.status != 0, "\(arguments): \(refused.output)")
                #expect(refused.errors.contains("no ledger at \(ledger)"), "\(arguments): \(refused.errors)")
                #expect(!refused.output.contains("ledger verified"), "\(arguments): \(refused.output)")
                #expect(!FileManager.default.fileExists(atPath: folder.path), "\(arguments) created \(folder.path)")
            }
        }
    }

    @Test func theCommandLineRefusesWhatTheAdminAPIRefuses() async throws {
        let environment = try Self.environment()
        let long = String(repeating: "n", count: 201)
        let refusals: [([String], String)] = [
            (["keys", "create", "--name", ""], "--name must not be empty"),
            (["keys", "create", "--name", long], "--name must be at most 200 bytes"),
            (["keys", "create", "--name", "bob", "--credits=-5"], "--credits must not be negative"),
            (["teams", "create", "--name", ""], "--name must not be empty"),
            (["teams", "create", "--name", "design", "--credits=-7"], "--credits must not be negative"),
            (["keys", "topup", "kaaaaaaaa", "1", "--reason", long], "--reason must be at most 200 bytes"),
            (["keys", "deduct", "kaaaaaaaa", "1", "--reason", ""], "--reason must not be empty"),
            (["teams", "topup", "design", "1", "--reason", ""], "--reason must not be empty"),
        ]
        for (arguments, words) in refusals {
            let refused = try await RunningGateway.run(arguments, environment: environment)
            #expect(refused.status != 0 && refused.errors.contains(words), "\(arguments): \(refused.errors)")
        }
        let listed = try await RunningGateway.run(["keys", "list", "--json"], environment: environment)
        #expect(try listed.status == 0 && (Self.json(listed.output) as? [Any])?.isEmpty == true, "\(listed.output)")
        let teams = try await RunningGateway.run(["teams", "list", "--json"], environment: environment)
        #expect(try teams.status == 0 && (Self.json(teams.output) as? [Any])?.isEmpty == true, "\(teams.output)")
    }

    @Test func createTopUpShowRevokeAndVerify() async throws {
        let environment = try Self.environment()
        let created = try await RunningGateway.run(
            ["keys", "create", "--name", "alice", "--credits", "2.5", "--models", "sdxl-img2img", "--json"],
            environment: environment)
        #expect(created.status == 0, "\(created.errors)")
        let key = try #require(try Self.json(created.output) as? [String: Any])
        let id = try #require(key["id"] as? String)
        #expect((key["secret"] as? String)?.hasPrefix("sdg_\(id)_") == true)
        #expect(key["available"] as? String == "2.5")
        #expect(key["models"] as? [String] == ["sdxl-img2img"])

        let topped = try await RunningGateway.run(["keys", "topup", id, "1.25", "--reason", "bonus", "--json"], environment: environment)
        #expect((try Self.json(topped.output) as? [String: Any])?["available"] as? String == "3.75")
        let deducted = try await RunningGateway.run(["keys", "deduct", id, "0.75", "--reason", "correction", "--json"], environment: environment)
        #expect((try Self.json(deducted.output) as? [String: Any])?["available"] as? String == "3")
        let tooMuch = try await RunningGateway.run(["keys", "deduct", id, "10", "--reason", "too much"], environment: environment)
        #expect(tooMuch.status != 0)
        #expect(tooMuch.errors.contains("the available balance is too low"))

        let limited = try await RunningGateway.run(["keys", "limit", id, "--all-models", "--rate-limit", "12", "--json"], environment: environment)
        let limits = try #require(try Self.json(limited.output) as? [String: Any])
        #expect(limits["models"] == nil && limits["rate_limit_per_minute"] as? Int == 12)

        let list = try await RunningGateway.run(["keys", "list", "--json"], environment: environment)
        let keys = try #require(try Self.json(list.output) as? [[String: Any]])
        #expect(keys.count == 1)
        #expect(keys.first?["secret"] == nil, "a secret is shown only at creation")

        let revoked = try await RunningGateway.run(["keys", "revoke", id, "--json"], environment: environment)
        #expect((try Self.json(revoked.output) as? [String: Any])?["revoked_at"] != nil)
        let verified = try await RunningGateway.run(["ledger", "verify"], environment: environment)
        #expect(verified.status == 0)
        #expect(verified.output == "ledger verified: every balance matches its entries\n")
        let missing = try await RunningGateway.run(["keys", "show", "knobody"], environment: environment)
        #expect(missing.status != 0)
    }

    @Test func aRealKeyIsMeteredAndNeverLogged() async throws {
        let environment = try Self.environment()
        let created = try await RunningGateway.run(["keys", "create", "--name", "bob", "--credits", "1", "--json"], environment: environment)
        let secret = try #require((try Self.json(created.output) as? [String: Any])?["secret"] as? String)
        let gateway = try await RunningGateway.start(environment: environment)
        let answer = try await Command.run(
            "curl",
            [
                "-sS", "-i", "-H", "x-api-key: \(secret)", "-H", "Content-Type: application/json",
                "-d", #"{"prompt":"a cat"}"#, "http://127.0.0.1:\(gateway.port)/v1/sdxl1.0-txt2img",
            ])
        // No backend is configured: 503, nothing charged, the remaining credits shown.
        #expect(answer.output.hasPrefix("HTTP/1.1 503"))
        #expect(answer.output.contains("x-remaining-credits: 1\r\n"))
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
        #expect(!gateway.log.contains(secret))
        #expect(!gateway.log.contains(String(secret.suffix(43))))
        let usage = try await RunningGateway.run(["usage", "--json"], environment: environment)
        let rows = try #require((try Self.json(usage.output) as? [String: Any])?["requests"] as? [[String: Any]])
        #expect(rows.map { $0["status"] as? Int } == [503])
        #expect(!usage.output.contains(secret))
    }
}

extension KeysCommandTests {
    /// `sdgate backup` while the gateway serves: the copy is a ledger of its own, with the same keys
    /// and balances, and it verifies; an existing file is never overwritten; PostgreSQL is pointed
    /// to its own tools.
    @Test func backupCopiesTheLedgerWhileItServes() async throws {
        let environment = try Self.environment()
        let gateway = try await RunningGateway.start(environment: environment)
        let created = try await RunningGateway.run(["keys", "create", "--name", "alice", "--credits", "2.5", "--json"], environment: environment)
        let id = try #require((try Self.json(created.output) as? [String: Any])?["id"] as? String, "\(created.errors)")
        let copy = Scratch.path("backup", pathExtension: "sqlite").path
        let backup = try await RunningGateway.run(["backup", "--to", copy], environment: environment)
        #expect(backup.status == 0 && backup.output == "ledger copied to \(copy)\n", "\(backup.output)\(backup.errors)")

        let fromCopy = ["SDGATE_LEDGER_DATABASE": copy]
        let shown = try await RunningGateway.run(["keys", "show", id, "--json"], environment: fromCopy)
        #expect((try Self.json(shown.output) as? [String: Any])?["available"] as? String == "2.5", "\(shown.output)\(shown.errors)")
        #expect(try await RunningGateway.run(["ledger", "verify"], environment: fromCopy).status == 0)

        let again = try await RunningGateway.run(["backup", "--to", copy], environment: environment)
        #expect(again.status != 0 && again.errors.contains("exists already"), "\(again.errors)")
        let postgres = try await RunningGateway.run(
            ["backup", "--to", copy + ".pg"], environment: ["SDGATE_LEDGER_DATABASE": "postgres://db/sdgate"])
        #expect(postgres.status != 0 && postgres.errors.contains("pg_dump"), "\(postgres.errors)")
        #expect(try await gateway.stop(signal: SIGTERM) == 0)
    }
}
