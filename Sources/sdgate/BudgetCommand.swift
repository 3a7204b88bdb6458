import ArgumentParser
import Ledger

/// `sdgate keys budget` and `sdgate teams budget`: set, change or remove a periodic budget.
struct BudgetCommand<Kind: CreditAccountCommands>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "budget", abstract: "Set, change or remove a budget that renews every day, week or month.",
            discussion: """
                The budget caps what is reserved and charged per calendar day, week (Monday to Sunday) or month, \
                beginning at midnight in --time-zone, on top of the one-off credits; with --rolling, in the last 24 hours, \
                7 days or 30 days before each request instead. Changing only the amount keeps what the current period \
                has spent; a new budget, period or time zone counts from now on.
                """)
    }

    @OptionGroup var options: LedgerOptions
    @Argument(help: ArgumentHelp(Kind.argumentHelp, valueName: Kind.valueName)) var account: String
    @Option(help: "The period: day, week or month.") var per: BudgetPeriod?
    @Option(help: "Credits per period (decimal).") var amount: CreditAmount?
    @Option(help: "The IANA time zone whose midnights begin the periods (default UTC).") var timeZone: String?
    @Flag(help: "A rolling window instead: the last 24 hours, 7 days or 30 days before each request.") var rolling = false
    @Flag(help: "Remove the budget.") var remove = false

    /// The budget to set, nil to remove it; checked before the ledger is opened.
    func budget() throws -> PeriodBudget? {
        if remove {
            guard per == nil, amount == nil, timeZone == nil, !rolling else {
                throw ValidationError("--remove takes neither --per, --amount, --time-zone nor --rolling")
            }
            return nil
        }
        guard let per, let amount else { throw ValidationError("give --per and --amount, or --remove") }
        if rolling && timeZone != nil { throw ValidationError("a rolling budget has no time zone: leave out --time-zone") }
        switch PeriodBudget.checked(period: per.period, amount: amount.credits, timeZone: timeZone ?? "UTC", rolling: rolling) {
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
