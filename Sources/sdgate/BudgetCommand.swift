import ArgumentParser
import Ledger

/// `sdgate keys budget` and `sdgate teams budget`: set, change or remove a periodic budget.
struct BudgetCommand<Kind: CreditAccountCommands>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "budget", abstract: "Set, change or remove a budget that renews every day, week or month.",
            discussion: """
                The budget caps what is reserved and charged per calendar day, week (Monday to Sunday) or month,
                beginning at midnight in --time-zone, on top of the one-off credits. Changing only the amount keeps
                what the current period has spent; a new budget, period or time zone counts from now on.
                """)
    }

    @OptionGroup var options: LedgerOptions
    @Argument(help: ArgumentHelp(Kind.argumentHelp, valueName: Kind.valueName)) var account: String
    @Option(help: "The period: day, week or month.") var per: BudgetPeriod?
    @Option(help: "Credits per period (decimal).") var amount: CreditAmount?
    @Option(help: "The IANA time zone whose midnights begin the periods.") var timeZone = "UTC"
    @Flag(help: "Remove the budget.") var remove = false

    /// The budget to set, nil to remove it; checked before the ledger is opened.
    func budget() throws -> PeriodBudget? {
        if remove {
            guard per == nil, amount == nil else { throw ValidationError("--remove takes neither --per nor --amount") }
            return nil
        }
        guard let per, let amount else { throw ValidationError("give --per and --amount, or --remove") }
        switch PeriodBudget.checked(period: per.period, amount: amount.credits, timeZone: timeZone) {
        case .success(let budget): return budget
        case .failure(let problem): throw ValidationError(problem.message)
        }
    }

    func validate() throws { _ = try budget() }

    func run() async throws {
        try await Kind.setBudget(options, account, try budget())
    }
}

/// `day`, `week` or `month` as an argument.
struct BudgetPeriod: ExpressibleByArgument {
    let period: PeriodBudget.Period

    init?(argument: String) {
        guard let period = PeriodBudget.Period(rawValue: argument) else { return nil }
        self.period = period
    }

    static var allValueStrings: [String] { PeriodBudget.Period.allCases.map(\.rawValue) }
}
