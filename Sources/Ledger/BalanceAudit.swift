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
    /// The account's charges made after their hold expired: only they may take it below zero.
    let lateCharges: Int64
    /// The running count of the periodic budget's counted period (nil: none counted), and what
    /// the holds of that period add up to: held if open, charged if posted.
    var periodSpent: Int64? = nil
    var fromPeriodHolds: Int64 = 0

    /// SQL for what a hold `h` adds to its period's spending: held while open, its charge once posted.
    static let periodSpending = "CASE h.state WHEN 'open' THEN h.amount WHEN 'posted' THEN h.charged ELSE 0 END"

    /// The reason of a late charge's entries (it has no quote to escape).
    static let lateChargeReason = SQLiteLedger.lateChargeReason

    /// SQL for the five counts of `postEntries` through `lateCharges` (`post_entries` through
    /// `late_charges`) of the account whose id is `account`, whose entries are in `entries` under
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
            (SELECT COUNT(*) FROM hold h WHERE h.\(holdOwner) = \(account) AND h.state = 'posted' AND h.charged > 0) AS charged_holds,
            (SELECT COUNT(*) FROM \(entries) e WHERE e.\(owner) = \(account) AND e.kind = 'post' AND e.reason = '\(lateChargeReason)')
                AS late_charges
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
        // Below zero only by a charge made after its hold expired, which takes what the hold covered
        // whatever is left; any other way is an overdraft.
        if balance - held < 0, lateCharges == 0 {
            problems.append("\(account): available balance is negative (\(credits(balance - held))) without a late charge")
        }
        return problems
    }
}
