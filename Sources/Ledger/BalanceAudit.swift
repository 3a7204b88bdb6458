import GenerationCore

/// What `verify` compares for one key or team, whichever store read it: the running totals against what
/// the entries and holds say they must be.
struct BalanceAudit {
    let account: String
    let balance: Int64, fromEntries: Int64
    let held: Int64, fromHolds: Int64
    let charged: Int64, posted: Int64

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
        if balance - held < 0 { problems.append("\(account): available balance is negative (\(credits(balance - held)))") }
        return problems
    }
}
