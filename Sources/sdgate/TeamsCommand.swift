import ArgumentParser
import GenerationCore
import Ledger
import SDGateApp

struct TeamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "teams",
        abstract: "Create, list, show and fund teams.",
        discussion: """
            A key created with `sdgate keys create --team TEAM` spends its own credits and its team's: \
            a request is refused when either would go below zero. A team is named by its id or its name.
            """,
        subcommands: [Create.self, List.self, Show.self, TopUpCommand<Self>.self, DeductCommand<Self>.self, BudgetCommand<Self>.self]
    )

    static func team(_ reference: String, in ledger: any Ledger) async throws -> LedgerTeam {
        guard let team = try await ledger.team(idOrName: reference) else { throw ValidationError("no team '\(reference)'") }
        return team
    }

    /// The id of the team named by `reference`, if there is a reference.
    static func teamID(_ reference: String?, in ledger: any Ledger) async throws -> String? {
        guard let reference else { return nil }
        return try await team(reference, in: ledger).id
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a team.")

        @OptionGroup var options: LedgerOptions
        @Option(help: "The team's name (unique).") var name: String
        @Option(help: "Credits to start its budget with (decimal).") var credits: CreditAmount?

        func validate() throws {
            if let problem = KeyLimits.problem(text: name, option: "--name") { throw ValidationError(problem) }
            if let credits, credits.credits < .zero { throw ValidationError("--credits must not be negative") }
        }

        func run() async throws {
            let ledger = try await options.open()
            let team = try await ledger.createTeam(name: name)
            if let credits, credits.credits > .zero { _ = try await ledger.adjust(.team(team.id), by: credits.credits, reason: "initial credits") }
            let report = try await TeamReport.read(team, from: ledger)
            try options.emit(report) { report.line }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every team with its budget.")

        @OptionGroup var options: LedgerOptions

        func run() async throws {
            let ledger = try await options.open()
            var reports: [TeamReport] = []
            for team in try await ledger.teams() { reports.append(try await TeamReport.read(team, from: ledger)) }
            try options.emit(reports) { reports.isEmpty ? "no teams" : reports.map(\.line).joined(separator: "\n") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one team, its budget and its keys.")

        @OptionGroup var options: LedgerOptions
        @Argument(help: "The team's id or name.") var team: String

        func run() async throws {
            let ledger = try await options.open()
            let report = try await TeamReport.read(try await TeamsCommand.team(team, in: ledger), from: ledger)
            try options.emit(report) { report.line + (report.keysText.isEmpty ? "" : "\n" + report.keysText) }
        }
    }

    static func adjust(_ options: LedgerOptions, _ reference: String, by amount: Credits, reason: String) async throws {
        let ledger = try await options.open()
        let team = try await team(reference, in: ledger)
        _ = try await ledger.adjust(.team(team.id), by: amount, reason: reason)
        let report = try await TeamReport.read(team, from: ledger)
        try options.emit(report) { report.line }
    }

    static func setBudget(_ options: LedgerOptions, _ reference: String, _ budget: PeriodBudget?) async throws {
        let ledger = try await options.open()
        let team = try await team(reference, in: ledger)
        _ = try await ledger.setBudget(budget, of: .team(team.id))
        let report = try await TeamReport.read(team, from: ledger)
        try options.emit(report) { report.line }
    }
}

extension TeamsCommand: CreditAccountCommands {
    static let group = "teams"
    static let valueName = "team"
    static let argumentHelp = "The team's id or name."
    static let topUpAbstract = "Add credits to a team's budget."
    static let deductAbstract = "Take credits away from a team's budget (not below what it has available)."
}
