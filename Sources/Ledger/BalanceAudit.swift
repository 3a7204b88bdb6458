import GenerationCore

/// What `verify` compares for one key or team, whichever store read it: the running totals against what
/// the entries and holds say they must be.
struct BalanceAudit {
    let account: String
    let balance: Int64, fromEntries: Int64
    let held: Int64, fromHolds: Int64
    /// How the account's post entries pair with its posted holds, counted rather than summed (a
    /// lifetime's charges may pass Int64): all its post entries, those whose hold is a posted hold of
    /// the account that charged their amount, the distinct holds of those, and the account's posted
    /// holds that charged anything.
    let postEntries: Int64, matchedEntries: Int64, matchedHolds: Int64, chargedHolds: Int64
    /// The running count of the periodic budget's counted period (nil: none counted), and what
    /// the holds of that period add up to: held if open, charged if posted.
    var periodSpent: Int64? = nil
    var fromPeriodHolds: Int64 = 0

    /// SQL for what a hold `h` adds to its period's spending: held while open, its charge once posted.
    static let periodSpending = "CASE h.state WHEN 'open' THEN h.amount WHEN 'posted' THEN h.charged ELSE 0 END"

    /// SQL for the four counts of `postEntries` through `chargedHolds` (`post_entries` through
    /// `charged_holds`) of the account whose id is `account`, whose entries are in `entries` under
    /// `owner`, and whose holds name it in `holdOwner`. Each entry finds its hold by its primary key.
    static func postPairing(account: String, entries: String, owner: String, holdOwner: String) -> String {
        let matched = """
            FROM \(entries) e JOIN hold h ON h.id = e.hold_id
            WHERE e.\(owner) = \(account) AND e.kind = 'post' AND h.\(holdOwner) = \(account) AND h.state = 'posted'
                  AND h.charged > 0 AND e.amount = -h.charged
            """
        return """
            (SELECT COUNT(*) FROM \(entries) e WHERE e.\(owner) = \(account) AND e.kind = 'post') AS post_entries,
            (SELECT COUNT(*) \(matched)) AS matched_entries,
            (SELECT COUNT(DISTINCT h.id) \(matched)) AS matched_holds,
            (SELECT COUNT(*) FROM hold h WHERE h.\(holdOwner) = \(account) AND h.state = 'posted' AND h.charged > 0) AS charged_holds
            """
    }

    var problems: [String] {
        func credits(_ micro: Int64) -> Credits { Credits(microCredits: micro) }
        var problems: [String] = []
        if balance != fromEntries {
            problems.append("\(account): balance \(credits(balance)) but the entries add up to \(credits(fromEntries))")
        }
        if held != fromHolds {
            problems.append("\(account): held \(credits(held)) but the open holds add up to \(credits(fromHolds))")
        }
        var unpaired: [String] = []
        if postEntries > matchedEntries {
            unpaired.append("post entries without a posted hold that charged their amount: \(postEntries - matchedEntries)")
        }
        if matchedEntries > matchedHolds { unpaired.append("post entries repeating their hold's: \(matchedEntries - matchedHolds)") }
        if chargedHolds > matchedHolds { unpaired.append("posted holds without the post entry of their charge: \(chargedHolds - matchedHolds)") }
        if !unpaired.isEmpty { problems.append("\(account): \(unpaired.joined(separator: "; "))") }
        if let periodSpent, periodSpent != fromPeriodHolds {
            problems.append(
                "\(account): the period's budget counts \(credits(periodSpent)) spent but its holds add up to \(credits(fromPeriodHolds))")
        }
        // A negative available balance is no fault: a charge made after its hold expired takes what
        // the hold covered, even below zero (the other totals account for it).
        return problems
    }
}
