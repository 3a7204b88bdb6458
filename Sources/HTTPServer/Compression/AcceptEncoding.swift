/// What a request's `Accept-Encoding` allows (RFC 9110 §12.5.3).
///
/// gzip is chosen only when the client names it (or `x-gzip`, RFC 9110 §8.4.1.3, or `*`) with a
/// weight above zero, and has not named `identity` (the answer as it is) with a higher one. A request
/// without the field gets the answer as it is: the RFC would allow any coding then, but a client
/// that does not ask may not decode.
struct AcceptEncoding: Sendable, Equatable {
    /// The weights of gzip and of identity, in thousandths (the RFC's three decimals).
    let gzip: Int
    let identity: Int

    /// - Parameter values: every `Accept-Encoding` field of the request (a list may be split across several).
    init(_ values: [String]) {
        var gzip: Int?, identity: Int?, wildcard: Int?
        for value in values {
            for member in value.split(separator: ",") {
                let parameters = member.split(separator: ";")
                guard let coding = parameters.first?.trimmingOWS(), !coding.isEmpty else { continue }
                // A member whose weight cannot be read says nothing.
                guard let weight = Self.weight(of: parameters.dropFirst()) else { continue }
                if coding.equalsASCIICaseInsensitive("gzip") || coding.equalsASCIICaseInsensitive("x-gzip") {
                    gzip = max(gzip ?? 0, weight)
                } else if coding.equalsASCIICaseInsensitive("identity") {
                    identity = weight
                } else if coding == "*" {
                    wildcard = weight
                }
            }
        }
        self.gzip = gzip ?? wildcard ?? 0
        // Unnamed, identity competes with nothing: a client that names only gzip at 0.5 still wants it.
        self.identity = identity ?? 0
    }

    var prefersGzip: Bool { gzip > 0 && gzip >= identity }

    /// The `q` parameter among a member's parameters; 1000 without one, nil if it is malformed.
    private static func weight(of parameters: ArraySlice<Substring>) -> Int? {
        for parameter in parameters {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingOWS().equalsASCIICaseInsensitive("q") else { continue }
            return qvalue(pair[1].trimmingOWS())
        }
        return 1000
    }

    /// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
    static func qvalue(_ text: Substring) -> Int? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, whole == "0" || whole == "1" else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= 3, fraction.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        var thousandths = 0
        for (index, digit) in fraction.utf8.enumerated() {
            thousandths += Int(digit - UInt8(ascii: "0")) * [100, 10, 1][index]
        }
        if whole == "1" { return thousandths == 0 ? 1000 : nil }
        return thousandths
    }
}
