import GenerationCore

/// What `verify` compares for one key or team, whichever store read it: the running totals against what
/// the entries and holds say they must be.
struct BalanceAudit {
    let account: String
    let balance: Int64, fromEntries: Int64
    let held: Int64, fromHolds: Int64
    let charged: Int64, posted: Int64
    /// The running count of the periodic budget's counted period (nil: none counted), and what
    /// the holds of that period add up to: held if open, charged if posted.
    var periodSpent: Int64? = nil
    var fromPeriodHolds: Int64 = 0

    /// SQL for what a hold `h` adds to its period's spending: held while open, its charge once posted.
    static let periodSpending = "CASE h.state WHEN 'open' THEN h.amount WHEN 'posted' THEN h.charged ELSE 0 END"

    var problems: [String] {
        func credits(_ micro: Int64) -> Credits { Credits(microCredits: micro) }
        var problems: [String] = []
        if balance != fromEntries {
            problems.append("\(account): balance \(credits(balance)) but the entries add up to \(credits(fromEntries))")
        }
        if held != fromHolds {
            problems.append("\(account): held \(credits(held)) but the open holds add up to \(credits(fromHolds))")
        }
        if charged != posted {
            problems.append("\(account): posted holds charged \(credits(charged)) but the post entries say \(credits(posted))")
        }
        if let periodSpent, periodSpent != fromPeriodHolds {
            problems.append(
                "\(account): the period's budget counts \(credits(periodSpent)) spent but its holds add up to \(credits(fromPeriodHolds))")
        }
        // A negative available balance is no fault: a charge made after its hold expired takes what
        // the hold covered, even below zero (the other totals account for it).
        return problems
    }
}
