@testable import HTTPServer

/// One parsed request, in a form tests compare and fixtures describe.
struct ParsedRequest: Equatable, Decodable, CustomStringConvertible {
    var method: String
    var target: String
    var version: String
    var headers: [[String]]
    var body: String
    var trailers: [[String]]

    var description: String { "\(method) \(target) \(version) headers=\(headers) body=\(body.debugDescription) trailers=\(trailers)" }
}

/// What the parser made of a whole input: the requests it completed, then an error or nothing.
struct ParseOutcome: Equatable, CustomStringConvertible {
    var requests: [ParsedRequest] = []
    var error: HTTPParseError?

    var description: String { "requests: \(requests), error: \(error.map { "\($0)" } ?? "none")" }
}

enum ParserDriver {
    /// Feeds `pieces` one after another to one parser, as a connection would, and collects what it made.
    static func parse(_ pieces: [[UInt8]], parser: HTTPRequestParser = HTTPRequestParser()) -> ParseOutcome {
        var parser = parser
        var outcome = ParseOutcome()
        var current: ParsedRequest?
        var body: [UInt8] = []
        for piece in pieces {
            let failed = piece.withUnsafeBytes { buffer -> Bool in
                var offset = 0
                while true {
                    let event: HTTPRequestParser.Event?
                    do throws(HTTPParseError) {
                        event = try parser.next(buffer, at: &offset)
                    } catch {
                        outcome.error = error
                        return true
                    }
                    guard let event else { return false }
                    switch event {
                    case .head(let head):
                        current = ParsedRequest(
                            method: head.method.rawValue, target: head.target, version: head.version.description,
                            headers: head.headers.map { [$0.name, $0.value] }, body: "", trailers: [])
                        body = []
                    case .body(let part):
                        precondition(!part.isEmpty, "the parser reported an empty body part")
                        body.append(contentsOf: part)
                    case .end(let trailers):
                        current!.body = String(decoding: body, as: UTF8.self)
                        current!.trailers = trailers.map { [$0.name, $0.value] }
                        outcome.requests.append(current!)
                        current = nil
                    }
                }
            }
            if failed { break }
        }
        return outcome
    }

    /// Every way to cut `bytes` in two.
    static func splitsInTwo(_ bytes: [UInt8]) -> [[[UInt8]]] {
        (1..<max(bytes.count, 1)).map { [Array(bytes[..<$0]), Array(bytes[$0...])] }
    }

    static func oneByteAtATime(_ bytes: [UInt8]) -> [[UInt8]] {
        bytes.map { [$0] }
    }
}
