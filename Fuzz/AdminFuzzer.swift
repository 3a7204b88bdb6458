// libFuzzer target for what an admin sends: the admin API's bodies as `AdminInput` reads them (a
// new key, a new team, a credit adjustment, a key's limits) and `Credits(decimal:)`, which reads
// every credit amount (the admin API, the command line, the catalog's prices). Compiled by Fuzz/run
// into one module with AdminInput.swift. Not part of the Swift package.
//
// Input: the first byte picks what the rest is: (byte % 5) 0 a new key's body, 1 a new team's,
// 2 an adjustment's, 3 a key's limits, 4 an amount's text.
//
// Traps when:
// - a body is accepted with a value outside its range (credits past `Credits.maximum` or negative
//   where they may not be, a zero adjustment, a rate limit or lifetime outside `KeyLimits`, empty
//   or overlong text, too many models), or refused without a message naming what is wrong;
// - what an accepted body leads to traps: the key's expiry, a balance at the maximum plus the amount;
// - `Credits(decimal:)` answers differently from a reference written independently here (an
//   optional minus, 1 to 13 ASCII digits, optionally a point and at most six ASCII digits, a
//   magnitude up to `Credits.maximum`), or an amount it reads does not read back from its own description.

import GenerationCore
import Ledger

// MARK: Amounts

/// The micro-credits `text` stands for, or nil, computed in 128 bits so that it cannot overflow.
private func reference(_ text: Substring) -> Int64? {
    var rest = text.utf8[...]
    let negative = rest.first == UInt8(ascii: "-")
    if negative { rest = rest.dropFirst() }
    let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    let whole = rest.prefix(while: isDigit)
    rest = rest.dropFirst(whole.count)
    var fraction = rest.prefix(0)
    if rest.first == UInt8(ascii: ".") {
        rest = rest.dropFirst()
        fraction = rest.prefix(while: isDigit)
        rest = rest.dropFirst(fraction.count)
    }
    // At most 13 digits before the point, leading zeros included (`Credits` counts them so too: an
    // amount so written is refused before any arithmetic, a harmless refusal of an odd spelling).
    guard !whole.isEmpty, whole.count <= 13, rest.isEmpty, fraction.count <= 6 else { return nil }
    var micro: Int128 = 0
    for byte in whole { micro = micro * 10 + Int128(byte - UInt8(ascii: "0")) }
    var scale: Int128 = 1_000_000
    for byte in fraction {
        scale /= 10
        micro = micro * 10 + Int128(byte - UInt8(ascii: "0"))
    }
    micro *= scale
    guard micro <= Int128(Credits.maximum.microCredits) else { return nil }
    return Int64(negative ? -micro : micro)
}

private func checkAmount(_ text: Substring, _ input: [UInt8]) {
    let parsed = Credits(decimal: text)
    let expected = reference(text)
    if parsed?.microCredits != expected {
        fail("Credits(decimal:) read \(parsed.map { String($0.microCredits) } ?? "nil") micro-credits, expected \(expected.map(String.init) ?? "nil")", input)
    }
    if let parsed, Credits(decimal: parsed.description) != parsed {
        fail("\(parsed.microCredits) micro-credits print as \"\(parsed.description)\", which does not read back", input)
    }
    if printsEachInput { printLine("\(text.debugDescription) -> \(parsed?.description ?? "nil")") }
}

// MARK: Bodies

/// What a ledger does with an amount from outside: adds it to a balance that may already be at the
/// maximum (or at minus the maximum, for a deduction), and compares the result with the maximum.
private func checkCredits(_ amount: Credits?, field: String, allowNegative: Bool, _ input: [UInt8]) {
    guard let amount else { return }
    if amount.microCredits.magnitude > Credits.maximum.microCredits.magnitude { fail("\(field): accepted \(amount), past the maximum", input) }
    if !allowNegative && amount < .zero { fail("\(field): accepted a negative \(amount)", input) }
    _ = Credits.maximum + amount
    _ = Credits.zero - Credits.maximum + amount
}

private func checkText(_ text: String?, field: String, required: Bool, _ input: [UInt8]) {
    guard let text else {
        if required { fail("\(field): accepted without it", input) }
        return
    }
    if required && text.isEmpty { fail("\(field): accepted empty", input) }
    if text.utf8.count > KeyLimits.maxTextLength { fail("\(field): accepted \(text.utf8.count) bytes of text", input) }
}

private func checkModels(_ models: [String]?, _ input: [UInt8]) {
    guard let models else { return }
    if models.count > AdminInput.maxModels { fail("models: accepted \(models.count)", input) }
    for name in models { checkText(name, field: "models", required: true, input) }
}

private func checkLimit(_ value: Int?, field: String, in range: ClosedRange<Int>, _ input: [UInt8]) {
    guard let value else { return }
    if !range.contains(value) { fail("\(field): accepted \(value), outside \(range)", input) }
}

private func checkLifetime(_ days: Int?, _ input: [UInt8]) {
    checkLimit(days, field: "expires_in_days", in: KeyLimits.lifetimeDays, input)
    // Now, and a clock far in the future: the expiry must not overflow either way.
    if let days { _ = (KeyLimits.expiry(days: days, from: 1_764_000_000_000), KeyLimits.expiry(days: days, from: Int64.max / 2)) }
}

/// A refusal names the field it is about, or says what the body should have been.
private let refusalStarts = ["expected a JSON object", "name:", "credits:", "amount:", "reason:", "models:", "rate_limit_per_minute:",
                             "expires_in_days:", "team:"]

private func checkRefusal(_ problem: AdminInput.Problem, _ input: [UInt8]) {
    if !refusalStarts.contains(where: problem.message.hasPrefix) { fail("a refusal that names no field: \"\(problem.message)\"", input) }
}

private func change<Value>(_ change: AdminInput.Change<Value>) -> Value? {
    if case .set(let value) = change { return value }
    return nil
}

// MARK: Entry

private func fail(_ message: String, _ input: [UInt8]) -> Never {
    fatalError("\(message); input (\(input.count) bytes) = \"\(escaped(input))\"")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let kind = input.first else { return 0 }
    let body = Array(input.dropFirst())
    switch kind % 5 {
    case 0:
        switch AdminInput.newKey(body) {
        case .success(let key):
            checkText(key.name, field: "name", required: true, input)
            checkCredits(key.credits, field: "credits", allowNegative: false, input)
            checkModels(key.models, input)
            checkLimit(key.rateLimitPerMinute, field: "rate_limit_per_minute", in: KeyLimits.requestsPerMinute, input)
            checkLifetime(key.lifetimeDays, input)
            checkText(key.team, field: "team", required: false, input)
        case .failure(let problem): checkRefusal(problem, input)
        }
    case 1:
        switch AdminInput.newTeam(body) {
        case .success(let team):
            checkText(team.name, field: "name", required: true, input)
            checkCredits(team.credits, field: "credits", allowNegative: false, input)
        case .failure(let problem): checkRefusal(problem, input)
        }
    case 2:
        switch AdminInput.adjustment(body) {
        case .success(let adjustment):
            if adjustment.amount == .zero { fail("amount: accepted zero", input) }
            checkCredits(adjustment.amount, field: "amount", allowNegative: true, input)
            checkText(adjustment.reason, field: "reason", required: true, input)
        case .failure(let problem): checkRefusal(problem, input)
        }
    case 3:
        switch AdminInput.limits(body) {
        case .success(let limits):
            checkModels(change(limits.models), input)
            checkLimit(change(limits.rateLimitPerMinute), field: "rate_limit_per_minute", in: KeyLimits.requestsPerMinute, input)
            checkLifetime(change(limits.lifetimeDays), input)
        case .failure(let problem): checkRefusal(problem, input)
        }
    default:
        checkAmount(Substring(String(decoding: body, as: UTF8.self)), input)
    }
    return 0
}
