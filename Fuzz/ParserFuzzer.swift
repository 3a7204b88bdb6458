// libFuzzer target for HTTPRequestParser, compiled into the HTTPServer parser sources by Fuzz/run
// (same module, so internal API is visible). Not part of the Swift package.
//
// Every input is parsed three ways: in one piece, in pieces whose sizes come from a PRNG seeded
// with a hash of the input (so a crash reproduces from the input alone), and one byte at a time.
// The three outcomes must be equal, and every step must keep the parser's invariants; a violation
// traps with `fatalError`, which libFuzzer records as a crash.

#if canImport(Glibc)
import Glibc
#endif

/// Small limits, so the limit paths are reachable within -max_len=4096.
private let fuzzLimits: HTTPRequestParser.Limits = {
    var limits = HTTPRequestParser.Limits()
    limits.maxRequestLineBytes = 512
    limits.maxHeaderBytes = 2048
    limits.maxHeaderCount = 20
    limits.maxChunkLineBytes = 128
    return limits
}()

/// The body limit the parser starts with.
private let initialMaxBodyBytes = 4096
/// After each `.head` the harness sets `maxBodyBytes`, as the connection does when it admits a
/// request; the value comes from this table, indexed by the request's number and the first input byte.
private let bodyLimits = [4096, 1024, 64, 0]

// MARK: Outcome

/// One request as the parser reported it. Equality ignores how the body was cut into parts.
private struct ParsedRequest: Equatable {
    var method: String
    var target: String
    var version: String
    var headers: [String]
    var framing: HTTPRequestParser.Framing
    var maxBodyBytes: Int
    var body: [UInt8] = []
    /// nil until `.end`.
    var trailers: [String]?
}

private enum Terminal: Equatable {
    /// Every byte consumed without error; `between` is `isBetweenRequests` at the end.
    case incomplete(between: Bool)
    case failed(HTTPParseError)
}

private struct Outcome: Equatable {
    var requests: [ParsedRequest] = []
    var terminal: Terminal = .incomplete(between: true)
}

// MARK: Driver

/// Feeds buffers to one parser, records the outcome and checks the invariants of every step.
private struct Driver {
    let mode: String
    let input: [UInt8]
    let firstByte: Int
    var parser = HTTPRequestParser(limits: fuzzLimits, maxBodyBytes: initialMaxBodyBytes)
    var outcome = Outcome()
    /// A request whose head was returned and whose end was not.
    var open: ParsedRequest?
    var failed: HTTPParseError?

    init(mode: String, input: [UInt8]) {
        self.mode = mode
        self.input = input
        firstByte = Int(input.first ?? 0)
    }

    func fail(_ message: String) -> Never {
        fatalError("[\(mode)] \(message); input (\(input.count) bytes) = \"\(escaped(input))\"")
    }

    /// Feeds one buffer: pulls events until the parser asks for more input or throws.
    /// Returns false once the parser has failed.
    mutating func feed(_ buffer: UnsafeRawBufferPointer) -> Bool {
        if failed != nil { return false }
        var offset = 0
        var eventsWithoutProgress = 0
        while true {
            let before = offset
            let event: HTTPRequestParser.Event?
            do {
                event = try parser.next(buffer, at: &offset)
            } catch {
                checkOffset(before, offset, buffer.count, "throwing next")
                failed = error
                checkSticky(error, buffer, offset)
                return false
            }
            checkOffset(before, offset, buffer.count, "next")
            guard let event else {
                if offset != buffer.count { fail("next returned nil at offset \(offset) of \(buffer.count): bytes left unconsumed") }
                return true
            }
            if offset == before {
                eventsWithoutProgress += 1
                if eventsWithoutProgress > 2 { fail("\(eventsWithoutProgress) events in a row without consuming a byte") }
            } else {
                eventsWithoutProgress = 0
            }
            handle(event, buffer, before, offset)
        }
    }

    func checkOffset(_ before: Int, _ after: Int, _ count: Int, _ what: String) {
        if after < before { fail("\(what) moved the offset backwards: \(before) -> \(after)") }
        if after > count { fail("\(what) moved the offset past the end: \(after) > \(count)") }
    }

    /// A parser that threw keeps throwing the same error, without moving the offset: on an empty
    /// buffer, on the rest of the buffer it threw on, and on a valid request.
    mutating func checkSticky(_ error: HTTPParseError, _ buffer: UnsafeRawBufferPointer, _ offset: Int) {
        expectSticky(error, UnsafeRawBufferPointer(start: nil, count: 0), 0, "an empty buffer")
        expectSticky(error, buffer, offset, "the rest of the buffer")
        let probe = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: probe.count, alignment: 1)
        defer { copy.deallocate() }
        copy.copyBytes(from: probe)
        expectSticky(error, UnsafeRawBufferPointer(copy), 0, "a valid request")
    }

    mutating func expectSticky(_ error: HTTPParseError, _ buffer: UnsafeRawBufferPointer, _ offset: Int, _ what: String) {
        var after = offset
        do {
            _ = try parser.next(buffer, at: &after)
            fail("parser that threw \"\(error)\" returned normally on \(what)")
        } catch let again {
            if again != error { fail("parser that threw \"\(error)\" then threw \"\(again)\" on \(what)") }
        }
        if after != offset { fail("parser that threw \"\(error)\" moved the offset on \(what): \(offset) -> \(after)") }
    }

    mutating func handle(_ event: HTTPRequestParser.Event, _ buffer: UnsafeRawBufferPointer, _ before: Int, _ after: Int) {
        switch event {
        case .head(let head):
            if open != nil { fail(".head while the previous request is still open") }
            checkHead(head)
            let limit = bodyLimits[(outcome.requests.count + firstByte) % bodyLimits.count]
            parser.maxBodyBytes = limit
            open = ParsedRequest(
                method: head.method.rawValue, target: head.target, version: head.version.description,
                headers: head.headers.map { "\($0.name): \($0.value)" }, framing: parser.framing, maxBodyBytes: limit)

        case .body(let part):
            guard var request = open else { fail(".body without an open request") }
            if part.isEmpty { fail("empty .body part") }
            // The part is a view into the buffer just fed, inside the bytes this call consumed.
            guard let base = buffer.baseAddress, let partBase = part.baseAddress else { fail(".body part outside the buffer") }
            let start = base.distance(to: partBase)
            if start < before || start + part.count != after {
                fail(".body part [\(start), \(start + part.count)) is not the tail of the consumed bytes [\(before), \(after))")
            }
            request.body.append(contentsOf: part)
            switch request.framing {
            case .none:
                fail(".body for a request without a body")
            case .length(let length):
                if request.body.count > length { fail("Content-Length \(length) body got \(request.body.count) bytes") }
            case .chunked:
                break
            }
            if request.body.count > request.maxBodyBytes {
                fail("body of \(request.body.count) bytes exceeds maxBodyBytes \(request.maxBodyBytes)")
            }
            open = request

        case .end(let trailers):
            guard var request = open else { fail(".end without an open request") }
            if case .length(let length) = request.framing, request.body.count != length {
                fail("Content-Length \(length) body ended after \(request.body.count) bytes")
            }
            if request.framing != .chunked && trailers.count > 0 { fail("trailers without chunked framing") }
            for field in trailers { checkField(field, "trailer") }
            request.trailers = trailers.map { "\($0.name): \($0.value)" }
            outcome.requests.append(request)
            open = nil
            if !parser.isBetweenRequests { fail("parser not between requests right after .end") }
        }
    }

    func checkHead(_ head: HTTPRequestHead) {
        if head.method.rawValue.isEmpty || !head.method.rawValue.utf8.allSatisfy(ByteClass.isToken) {
            fail("method \(head.method.rawValue.debugDescription) is not a token")
        }
        if head.target.isEmpty || !head.target.utf8.allSatisfy(ByteClass.isTarget) {
            fail("target \(head.target.debugDescription) has a byte outside the visible ASCII range")
        }
        if head.version != .http1_0 && head.version != .http1_1 { fail("version \(head.version)") }
        if head.headers.count > fuzzLimits.maxHeaderCount { fail("\(head.headers.count) header fields") }
        for field in head.headers { checkField(field, "header") }
        let hosts = head.headers.values("Host").count
        if hosts > 1 || (hosts == 0 && head.version == .http1_1) { fail("head accepted with \(hosts) Host fields") }
        switch parser.framing {
        case .none:
            if head.headers.contains("Transfer-Encoding") || head.headers.contains("Content-Length") {
                fail("framing .none despite Transfer-Encoding or Content-Length")
            }
        case .length(let length):
            if length < 0 { fail("negative Content-Length \(length)") }
            if head.headers.contains("Transfer-Encoding") { fail("Content-Length framing with Transfer-Encoding") }
        case .chunked:
            if head.headers.contains("Content-Length") { fail("chunked framing with Content-Length") }
        }
    }

    func checkField(_ field: HTTPHeaders.Element, _ what: String) {
        if field.name.isEmpty || !field.name.utf8.allSatisfy(ByteClass.isToken) {
            fail("\(what) name \(field.name.debugDescription) is not a token")
        }
        let value = Array(field.value.utf8)
        if !value.allSatisfy(ByteClass.isFieldValue) { fail("\(what) value \(field.value.debugDescription) has a control byte") }
        if let first = value.first, ByteClass.isWhitespace(first) { fail("\(what) value starts with white space") }
        if let last = value.last, ByteClass.isWhitespace(last) { fail("\(what) value ends with white space") }
    }

    /// The outcome once every buffer has been fed.
    func finish() -> Outcome {
        var result = outcome
        if let open { result.requests.append(open) }
        result.terminal = failed.map { .failed($0) } ?? .incomplete(between: parser.isBetweenRequests)
        return result
    }
}

// MARK: Splitting

/// splitmix64: a small deterministic PRNG, seeded from the input so a crash reproduces from it alone.
private struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    return hash
}

/// Piece sizes: mostly tiny (splits inside CRLF and tokens), sometimes past the line limits.
private func randomPieces(_ count: Int, seed: UInt64) -> [Int] {
    var rng = SplitMix64(state: seed)
    var pieces: [Int] = []
    var left = count
    while left > 0 {
        let r = rng.next()
        let size: Int
        switch r % 10 {
        case 0..<5: size = 1 + Int((r >> 8) % 4)
        case 5..<8: size = 1 + Int((r >> 8) % 40)
        default: size = 1 + Int((r >> 8) % 700)
        }
        pieces.append(min(size, left))
        left -= pieces.last!
    }
    return pieces
}

/// Parses `input` cut into `pieces`; each piece is copied into its own allocation of exactly its
/// size, so AddressSanitizer catches a read past a piece, and freed before the next one.
private func parse(_ input: [UInt8], pieces: [Int], mode: String) -> Outcome {
    var driver = Driver(mode: mode, input: input)
    var start = 0
    for size in pieces {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: input[start..<start + size])
        start += size
        if !driver.feed(UnsafeRawBufferPointer(buffer)) { break }
    }
    return driver.finish()
}

// MARK: Entry

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))

    let whole = parse(input, pieces: input.isEmpty ? [] : [input.count], mode: "one piece")
    let split = parse(input, pieces: randomPieces(input.count, seed: fnv1a(input)), mode: "random pieces")
    let bytewise = parse(input, pieces: Array(repeating: 1, count: input.count), mode: "byte at a time")

    if printsEachInput { printLine(describe(whole)) }
    if split != whole { mismatch("random pieces", "sizes \(randomPieces(input.count, seed: fnv1a(input)))", whole, split, input) }
    if bytewise != whole { mismatch("byte at a time", "", whole, bytewise, input) }
    return 0
}

private func mismatch(_ mode: String, _ detail: String, _ whole: Outcome, _ other: Outcome, _ input: [UInt8]) -> Never {
    fatalError("""
        outcome differs between one piece and \(mode)\(detail.isEmpty ? "" : " (\(detail))")
          one piece: \(describe(whole))
          \(mode): \(describe(other))
          input (\(input.count) bytes) = "\(escaped(input))"
        """)
}

private func describe(_ outcome: Outcome) -> String {
    var parts = outcome.requests.map { request in
        "\(request.method) \(request.target.prefix(40)) \(request.version) headers=\(request.headers.count) " +
            "framing=\(request.framing) body=\(request.body.count) " +
            (request.trailers.map { "ended trailers=\($0.count)" } ?? "open")
    }
    switch outcome.terminal {
    case .incomplete(let between): parts.append("incomplete (between requests: \(between))")
    case .failed(let error): parts.append("error \"\(error)\" (\(error.status.code))")
    }
    return parts.joined(separator: " | ")
}
