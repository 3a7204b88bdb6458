import ArgumentParser
import GenerationCore
import Ledger

/// What `topup` and `deduct` need to know of the account they move: how the command line names
/// it, and how to move its credits and print the result. `keys` and `teams` share the two commands.
protocol CreditAccountCommands {
    /// The command the account's commands are under: `keys` or `teams`.
    static var group: String { get }
    /// The argument that names the account, as the help shows it.
    static var valueName: String { get }
    static var argumentHelp: String { get }
    /// What the help says each command does.
    static var topUpAbstract: String { get }
    static var deductAbstract: String { get }

    /// Moves `amount` (positive: a top-up) and prints the account as it is afterwards.
    static func adjust(_ options: LedgerOptions, _ reference: String, by amount: Credits, reason: String) async throws
    /// Sets (nil: removes) the account's periodic budget and prints the account as it is afterwards.
    static func setBudget(_ options: LedgerOptions, _ reference: String, _ budget: PeriodBudget?) async throws
}

/// `sdgate keys topup` and `sdgate teams topup`.
struct TopUpCommand<Kind: CreditAccountCommands>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: "topup", abstract: Kind.topUpAbstract) }

    @OptionGroup var options: LedgerOptions
    @Argument(help: ArgumentHelp(Kind.argumentHelp, valueName: Kind.valueName)) var account: String
    @Argument(help: "Credits to add (decimal).") var amount: CreditAmount
    @Option(help: "Why, recorded with the movement.") var reason = "top-up"

    func validate() throws {
        if let problem = KeyLimits.problem(text: reason, option: "--reason") { throw ValidationError(problem) }
    }

    func run() async throws {
        guard amount.credits > .zero else {
            throw ValidationError("the amount must be positive; use `sdgate \(Kind.group) deduct` to take credits away")
        }
        try await Kind.adjust(options, account, by: amount.credits, reason: reason)
    }
}

/// `sdgate keys deduct` and `sdgate teams deduct`.
struct DeductCommand<Kind: CreditAccountCommands>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: "deduct", abstract: Kind.deductAbstract) }

    @OptionGroup var options: LedgerOptions
    @Argument(help: ArgumentHelp(Kind.argumentHelp, valueName: Kind.valueName)) var account: String
    @Argument(help: "Credits to take away (decimal).") var amount: CreditAmount
    @Option(help: "Why, recorded with the movement.") var reason: String

    func validate() throws {
        if let problem = KeyLimits.problem(text: reason, option: "--reason") { throw ValidationError(problem) }
    }

    func run() async throws {
        guard amount.credits > .zero else { throw ValidationError("the amount must be positive") }
        try await Kind.adjust(options, account, by: .zero - amount.credits, reason: reason)
    }
}
