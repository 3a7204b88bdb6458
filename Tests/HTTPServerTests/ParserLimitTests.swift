import Testing

@testable import HTTPServer

/// Each limit at its edge: the largest accepted input, and one byte (or field) more.
@Suite("Parser limits")
struct ParserLimitTests {
    static func parser(_ configure: (inout HTTPRequestParser.Limits) -> Void, maxBodyBytes: Int = 1 << 20) -> HTTPRequestParser {
        var limits = HTTPRequestParser.Limits()
        configure(&limits)
        return HTTPRequestParser(limits: limits, maxBodyBytes: maxBodyBytes)
    }

    static func request(target: String = "/", headers: [String] = ["Host: a"], body: String = "") -> [UInt8] {
        Array(("GET \(target) HTTP/1.1\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n" + body).utf8)
    }

    @Test func requestLineAtLimitIsAcceptedAndOneMoreIs414() {
        let line = "GET / HTTP/1.1"
        let parser = Self.parser { $0.maxRequestLineBytes = 64 }
        let fits = Self.request(target: "/" + String(repeating: "a", count: 64 - line.count))
        let tooLong = Self.request(target: "/" + String(repeating: "a", count: 65 - line.count))
        #expect(ParserDriver.parse([fits], parser: parser).requests.count == 1)
        #expect(ParserDriver.parse([tooLong], parser: parser).error == .requestLineTooLong)
        #expect(ParserDriver.parse(ParserDriver.oneByteAtATime(tooLong), parser: parser).error == .requestLineTooLong)
        #expect(HTTPParseError.requestLineTooLong.status.code == 414)
    }

    @Test func headerBytesAtLimitAreAcceptedAndOneMoreIs431() {
        // Each field line counts with its CRLF; the empty line ending the section counts 2.
        let parser = Self.parser { $0.maxHeaderBytes = 100 }
        let host = "Host: a"  // 9 bytes with CRLF
        let filler = { (length: Int) in "X: " + String(repeating: "v", count: length - 5) }
        let fits = Self.request(headers: [host, filler(100 - 9 - 2)])
        let tooLarge = Self.request(headers: [host, filler(100 - 9 - 2 + 1)])
        #expect(ParserDriver.parse([fits], parser: parser).requests.count == 1)
        #expect(ParserDriver.parse([tooLarge], parser: parser).error == .headerSectionTooLarge)
        #expect(ParserDriver.parse(ParserDriver.oneByteAtATime(tooLarge), parser: parser).error == .headerSectionTooLarge)
        #expect(HTTPParseError.headerSectionTooLarge.status.code == 431)
    }

    @Test func headerCountAtLimitIsAcceptedAndOneMoreIs431() {
        let parser = Self.parser { $0.maxHeaderCount = 10 }
        let fields = ["Host: a"] + (1..<10).map { "X-\($0): v" }
        #expect(ParserDriver.parse([Self.request(headers: fields)], parser: parser).requests.count == 1)
        #expect(ParserDriver.parse([Self.request(headers: fields + ["X-10: v"])], parser: parser).error == .tooManyHeaderFields)
        #expect(HTTPParseError.tooManyHeaderFields.status.code == 431)
    }

    @Test func chunkedBodyAtLimitIsAcceptedAndOneMoreIs413() {
        let parser = HTTPRequestParser(maxBodyBytes: 10)
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        let fits = Array((head + "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n").utf8)
        let tooLarge = Array((head + "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n").utf8)
        #expect(ParserDriver.parse([fits], parser: parser).requests.first?.body == "abcdefghij")
        #expect(ParserDriver.parse([tooLarge], parser: parser).error == .bodyTooLarge)
    }

    @Test func contentLengthAtLimitIsAcceptedAndOneMoreIs413() {
        let parser = HTTPRequestParser(maxBodyBytes: 4)
        #expect(ParserDriver.parse([Array("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd".utf8)], parser: parser).requests.count == 1)
        #expect(
            ParserDriver.parse([Array("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde".utf8)], parser: parser).error == .bodyTooLarge)
        // A length too long to represent is larger than any limit, not a crash.
        let huge = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n"
        #expect(ParserDriver.parse([Array(huge.utf8)], parser: parser).error == .bodyTooLarge)
    }

    @Test func chunkLineAtLimitIsAcceptedAndLongerIsRefused() {
        let parser = Self.parser { $0.maxChunkLineBytes = 16 }
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        let fits = Array((head + "1;" + String(repeating: "e", count: 14) + "\r\nx\r\n0\r\n\r\n").utf8)
        let tooLong = Array((head + "1;" + String(repeating: "e", count: 15) + "\r\nx\r\n0\r\n\r\n").utf8)
        #expect(ParserDriver.parse([fits], parser: parser).requests.count == 1)
        #expect(ParserDriver.parse([tooLong], parser: parser).error == .chunkLineTooLong)
    }

    /// RFC 9110 §7.2: Host is a name or an address, with a port or without; links in answers are
    /// built from it. An empty one is what RFC 9110 has a client send when the target has no host.
    @Test(arguments: [
        "a", "", "example.com", "example.com.", "my_host.local:1", "xn--bcher-kva.example", "%41.example", "127.0.0.1:8080",
        "[::1]", "[::1]:443", "[2001:db8::7]:65535", String(repeating: "a", count: 255) + ":80",
    ])
    func aHostThatIsANameOrAnAddressIsAccepted(host: String) {
        #expect(ParserDriver.parse([Self.request(headers: ["Host: \(host)"])]).requests.count == 1, "\(host)")
    }

    @Test(arguments: [
        String(repeating: "a", count: 256), String(repeating: "h", count: 30_000), "example.com:", "example.com:0",
        "example.com:65536", "example.com:080808", "example.com:+80", "a:b:80", "a b", "a/b", "a@b", "a?b", "a\"b", "a<b", "é.example",
        "%4", "%zz.example", "::1", "[::1", "[::1]x", "[127.0.0.1]", "[v1.x]",
    ])
    func anyOtherHostIs400(host: String) {
        let request = Self.request(headers: ["Host: \(host)"])
        #expect(ParserDriver.parse([request]).error == .invalidHost, "\(host)")
        #expect(ParserDriver.parse(ParserDriver.oneByteAtATime(request)).error == .invalidHost, "\(host)")
        #expect(HTTPParseError.invalidHost.status.code == 400)
    }

    @Test func aFailedParserKeepsFailing() {
        var parser = HTTPRequestParser()
        let bad = Array("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".utf8)
        let good = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        bad.withUnsafeBytes { buffer in
            var offset = 0
            #expect(throws: HTTPParseError.multipleHost) { _ = try parser.next(buffer, at: &offset) }
        }
        good.withUnsafeBytes { buffer in
            var offset = 0
            #expect(throws: HTTPParseError.multipleHost) { _ = try parser.next(buffer, at: &offset) }
        }
    }

    @Test func betweenRequestsIsTrueOnlyBeforeAnyByteOfTheNext() {
        var parser = HTTPRequestParser()
        #expect(parser.isBetweenRequests)
        Array("GET / HTTP/1.1\r\nHost: a\r\n\r\nGE".utf8).withUnsafeBytes { buffer in
            var offset = 0
            while let event = try? parser.next(buffer, at: &offset) {
                if case .end = event { #expect(parser.isBetweenRequests) }
            }
        }
        #expect(!parser.isBetweenRequests)
    }
}

@Suite("Parser: bodies read in place")
struct ParserInPlaceBodyTests {
    @Test func theCallerMayReadAFixedBodyItselfAndThePipelineContinues() throws {
        var parser = HTTPRequestParser(maxBodyBytes: 100)
        var events: [String] = []
        let head = Array("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123".utf8)
        head.withUnsafeBytes { buffer in
            var offset = 0
            while let event = try? parser.next(buffer, at: &offset) {
                if case .head = event { events.append("head") }
                if case .body(let part) = event { events.append("body \(part.count)") }
            }
        }
        #expect(events == ["head", "body 4"])
        #expect(parser.remainingFixedBody == 6)
        parser.consumeFixedBody(5)
        #expect(parser.remainingFixedBody == 1)
        parser.consumeFixedBody(1)
        #expect(parser.remainingFixedBody == nil)
        // The end comes without more input; the next request parses as usual.
        let next = Array("GET /b HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        var outcome: [String] = []
        next.withUnsafeBytes { buffer in
            var offset = 0
            while let event = try? parser.next(buffer, at: &offset) {
                switch event {
                case .head(let head): outcome.append("head \(head.target)")
                case .body: outcome.append("body")
                case .end: outcome.append("end")
                }
            }
        }
        #expect(outcome == ["end", "head /b", "end"])
    }

    @Test func noFixedBodyOutsideOne() {
        let parser = HTTPRequestParser()
        #expect(parser.remainingFixedBody == nil)
    }
}

@Suite("Parser: errors do not depend on how input is split")
struct ParserSplitConsistencyTests {
    /// Found by the fuzzer: a line both too long and ending in a bare LF was "must end with CRLF"
    /// in one piece but "too long" when split. Length is now checked first on every path.
    @Test(arguments: [
        (64, "GET /\(String(repeating: "a", count: 80)) HTTP/1.1\nHost: t\r\n\r\n", HTTPParseError.requestLineTooLong),
        (66, "GET / HTTP/1.1\r\nX: \(String(repeating: "v", count: 80))\n\r\n", HTTPParseError.headerSectionTooLarge),
    ])
    func aTooLongLineEndingInABareLF(limit: Int, request: String, error: HTTPParseError) {
        var limits = HTTPRequestParser.Limits()
        limits.maxRequestLineBytes = limit
        limits.maxHeaderBytes = limit
        let parser = HTTPRequestParser(limits: limits)
        let bytes = Array(request.utf8)
        #expect(ParserDriver.parse([bytes], parser: parser).error == error)
        for pieces in ParserDriver.splitsInTwo(bytes) {
            #expect(ParserDriver.parse(pieces, parser: parser).error == error)
        }
        #expect(ParserDriver.parse(ParserDriver.oneByteAtATime(bytes), parser: parser).error == error)
    }
}

@Suite("Parser: Content-Length digits")
struct ContentLengthDigitsTests {
    @Test func leadingZerosDoNotMakeALengthLarge() {
        let request = Array("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0000000000000000000000005\r\n\r\nhello".utf8)
        #expect(ParserDriver.parse([request]).requests.first?.body == "hello")
    }
}

@Suite("Request body buffer")
struct RequestBodyBufferTests {
    @Test func partsAndInPlaceReadsMakeOneBody() {
        var buffer = RequestBodyBuffer(expectedLength: 10)
        Array("abc".utf8).withUnsafeBytes { buffer.append($0) }
        // A read that fills less than offered leaves no zeros behind in the body.
        let filled = buffer.readInPlace(upTo: 7) { (space: UnsafeMutableRawBufferPointer) -> Int? in
            #expect(space.count == 7)
            space.copyBytes(from: Array("defg".utf8))
            return 4
        }
        #expect(filled == 4)
        let nothing = buffer.readInPlace(upTo: 3) { (_: UnsafeMutableRawBufferPointer) -> Int? in nil }
        #expect(nothing == nil)
        _ = buffer.readInPlace(upTo: 3) { (space: UnsafeMutableRawBufferPointer) -> Int? in
            space.copyBytes(from: Array("hij".utf8))
            return 3
        }
        #expect(buffer.count == 10)
        #expect(String(decoding: buffer.take(), as: UTF8.self) == "abcdefghij")
        #expect(buffer.count == 0)
    }

    @Test func inPlaceReadsAreOfferedAtMostOneStep() {
        var buffer = RequestBodyBuffer(expectedLength: 1 << 30)
        _ = buffer.readInPlace(upTo: 1 << 30) { (space: UnsafeMutableRawBufferPointer) -> Int? in
            #expect(space.count == RequestBodyBuffer.inPlaceReadStep)
            return 1
        }
        #expect(buffer.take().count == 1)
    }
}
