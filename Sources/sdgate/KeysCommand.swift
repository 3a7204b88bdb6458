import ArgumentParser
import Foundation
import GenerationCore
import Ledger
import SDGateApp

/// Options shared by the commands that work on the ledger.
struct LedgerOptions: ParsableArguments {
    @OptionGroup var configuration: ConfigurationOptions

    @Flag(help: "Print JSON that scripts can read.")
    var json = false

    func open() async throws -> any GatewayStorage {
        try await GatewayApp.openLedger(configuration.load(), ifMissing: .refuse)
    }

    func emit(_ value: some Encodable, text: () -> String) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(value), as: UTF8.self))
        } else {
            print(text())
        }
    }
}

/// A decimal amount of credits as an argument.
struct CreditAmount: ExpressibleByArgument {
    let credits: Credits

    init?(argument: String) {
        guard let credits = Credits(decimal: argument) else { return nil }
        self.credits = credits
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list, top up, deduct, limit and revoke API keys.",
        subcommands: [
            Create.self, List.self, Show.self, TopUpCommand<Self>.self, DeductCommand<Self>.self, BudgetCommand<Self>.self, Limit.self,
            Revoke.self,
        ]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; its secret is printed once and never stored.")

        @OptionGroup var options: LedgerOptions
        @Option(help: "Who the key is for.") var name: String
        @Option(help: "Credits to start with (decimal).") var credits: CreditAmount?
        @Option(help: "Models the key may use, comma-separated (default: all).") var models: String?
        @Option(help: "Requests per minute the key may make.") var rateLimit: Int?
        @Option(help: "Days until the key expires.") var expiresInDays: Int?
        @Option(help: "The team (id or name) whose budget the key also draws on.") var team: String?

        func validate() throws {
            if let problem = KeyLimits.problem(rateLimit: rateLimit, lifetimeDays: expiresInDays) { throw ValidationError(problem) }
            if let problem = KeyLimits.problem(text: name, option: "--name") { throw ValidationError(problem) }
            if let credits, credits.credits < .zero { throw ValidationError("--credits must not be negative") }
        }

        func run() async throws {
            let ledger = try await options.open()
            let expiresAt = expiresInDays.map { KeyLimits.expiry(days: $0, from: SystemWallClock().millisecondsNow) }
            let teamID = try await TeamsCommand.teamID(team, in: ledger)
            let (key, secret) = try await ledger.createKey(
                NewKey(
                    name: name, expiresAt: expiresAt,
                    models: models.map { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } },
                    rateLimitPerMinute: rateLimit, teamID: teamID))
            var balance = try await ledger.balance(of: .key(key.id))
            if let credits, credits.credits > .zero {
                balance = try await ledger.adjust(.key(key.id), by: credits.credits, reason: "initial credits")
            }
            try options.emit(KeyReport(key, balance, secret: secret)) {
                "\(KeyReport(key, balance).line)\nsecret: \(secret)\n(shown this once; sdgate stores only its hash)"
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every key with its balance.")

        @OptionGroup var options: LedgerOptions

        func run() async throws {
            let ledger = try await options.open()
            var views: [KeyReport] = []
            for key in try await ledger.keys() { views.append(KeyReport(key, try await ledger.balance(of: .key(key.id)))) }
            try options.emit(views) { views.isEmpty ? "no keys" : views.map(\.line).joined(separator: "\n") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one key and its balance.")

        @OptionGroup var options: LedgerOptions
        @Argument(help: "The key's id.") var id: String

        func run() async throws {
            let ledger = try await options.open()
            guard let key = try await ledger.key(id: id) else { throw ValidationError("no key '\(id)'") }
            let view = try await KeyReport.full(key, in: ledger)
            try options.emit(view) { view.detail }
        }
    }

    static func adjust(_ options: LedgerOptions, _ id: String, by amount: Credits, reason: String) async throws {
        let ledger = try await options.open()
        let balance = try await ledger.adjust(.key(id), by: amount, reason: reason)
        guard let key = try await ledger.key(id: id) else { throw ValidationError("no key '\(id)'") }
        let view = KeyReport(key, balance)
        try options.emit(view) { view.line }
    }

    static func setBudget(_ options: LedgerOptions, _ id: String, _ budget: PeriodBudget?) async throws {
        let ledger = try await options.open()
        guard let key = try await ledger.key(id: id) else { throw ValidationError("no key '\(id)'") }
        let view = KeyReport(key, try await ledger.setBudget(budget, of: .key(id)))
        try options.emit(view) { view.line }
    }

    struct Limit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a key's model allow-list, rate limit or expiry.")

        @OptionGroup var options: LedgerOptions
        @Argument(help: "The key's id.") var id: String
        @Option(help: "Models the key may use, comma-separated.") var models: String?
        @Flag(help: "Let the key use every model.") var allModels = false
        @Option(help: "Requests per minute the key may make.") var rateLimit: Int?
        @Flag(help: "Remove the rate limit.") var noRateLimit = false
        @Option(help: "Days from now until the key expires.") var expiresInDays: Int?
        @Flag(help: "Remove the expiry.") var noExpiry = false

        func validate() throws {
            if models != nil && allModels { throw ValidationError("--models and --all-models exclude each other") }
            if rateLimit != nil && noRateLimit { throw ValidationError("--rate-limit and --no-rate-limit exclude each other") }
            if expiresInDays != nil && noExpiry { throw ValidationError("--expires-in-days and --no-expiry exclude each other") }
            if let problem = KeyLimits.problem(rateLimit: rateLimit, lifetimeDays: expiresInDays) { throw ValidationError(problem) }
        }

        func run() async throws {
            let ledger = try await options.open()
            guard let current = try await ledger.key(id: id) else { throw ValidationError("no key '\(id)'") }
            let key = try await ledger.setLimits(
                keyID: id,
                models: allModels
                    ? nil : models.map { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } } ?? current.models,
                rateLimitPerMinute: noRateLimit ? nil : rateLimit ?? current.rateLimitPerMinute,
                expiresAt: noExpiry
                    ? nil : expiresInDays.map { KeyLimits.expiry(days: $0, from: SystemWallClock().millisecondsNow) } ?? current.expiresAt)
            let view = KeyReport(key, try await ledger.balance(of: .key(id)))
            try options.emit(view) { view.line }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key: it is refused from now on.")

        @OptionGroup var options: LedgerOptions
        @Argument(help: "The key's id.") var id: String

        func run() async throws {
            let ledger = try await options.open()
            try await ledger.revoke(keyID: id)
            guard let key = try await ledger.key(id: id) else { throw ValidationError("no key '\(id)'") }
            let view = KeyReport(key, try await ledger.balance(of: .key(id)))
            try options.emit(view) { view.line }
        }
    }
}

extension KeysCommand: CreditAccountCommands {
    static let group = "keys"
    static let valueName = "id"
    static let argumentHelp = "The key's id."
    static let topUpAbstract = "Add credits to a key."
    static let deductAbstract = "Take credits away from a key (not below what it has available)."
}

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Check the credit ledger, or export its entries.", subcommands: [Verify.self, LedgerExportCommand.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute every balance from the ledger's entries and holds; exit 1 on any difference.")

        @OptionGroup var options: LedgerOptions

        func run() async throws {
            let problems = try await options.open().verify()
            try options.emit(["problems": problems]) {
                problems.isEmpty ? "ledger verified: every balance matches its entries" : problems.joined(separator: "\n")
            }
            if !problems.isEmpty { throw ExitCode.failure }
        }
    }
}
