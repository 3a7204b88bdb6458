// libFuzzer target for the amounts an admin sends: `Credits(decimal:)`, which reads every credit
// amount of the admin API and the command line (a key's or team's credits, a top-up, a price in
// the catalog). Compiled by Fuzz/run beside the generation core. Not part of the Swift package.
//
// The input is the amount's text. Traps when:
// - the parser answers differently from a reference written independently here (an optional
//   minus, ASCII digits, optionally a point and at most six ASCII digits; a value whose
//   micro-credits fit in a signed 64-bit integer), or traps on the way (overflow);
// - an amount it reads does not read back the same from its own description.

import GenerationCore

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
    guard !whole.isEmpty, rest.isEmpty, fraction.count <= 6 else { return nil }
    // Leading zeros aside, more than 13 digits before the point is past 2^63 micro-credits.
    let significant = whole.drop { $0 == UInt8(ascii: "0") }
    guard significant.count <= 13 else { return nil }
    var micro: Int128 = 0
    for byte in significant { micro = micro * 10 + Int128(byte - UInt8(ascii: "0")) }
    var scale: Int128 = 1_000_000
    for byte in fraction {
        scale /= 10
        micro = micro * 10 + Int128(byte - UInt8(ascii: "0"))
    }
    micro *= scale
    guard micro <= Int128(Int64.max) else { return nil }
    return Int64(negative ? -micro : micro)
}

private func fail(_ message: String, _ input: [UInt8]) -> Never {
    fatalError("\(message); input (\(input.count) bytes) = \"\(escaped(input))\"")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let text = Substring(String(decoding: input, as: UTF8.self))
    let parsed = Credits(decimal: text)
    let expected = reference(text)
    if parsed?.microCredits != expected {
        fail("Credits(decimal:) read \(parsed.map { String($0.microCredits) } ?? "nil") micro-credits, expected \(expected.map(String.init) ?? "nil")", input)
    }
    if let parsed, Credits(decimal: parsed.description) != parsed {
        fail("\(parsed.microCredits) micro-credits print as \"\(parsed.description)\", which does not read back", input)
    }
    if printsEachInput { printLine("\(text.debugDescription) -> \(parsed?.description ?? "nil")") }
    return 0
}
