#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An incremental HTTP/1.1 request parser: a pure state machine on bytes, with no I/O.
///
/// The connection feeds it whatever arrived and pulls events one at a time with `next(_:at:)`.
/// Input may be split anywhere, even inside CRLF; the events are the same as for one piece.
/// Bytes after a complete request stay unconsumed, so the caller decides when the next pipelined
/// request may start (answers go out in order).
public struct HTTPRequestParser: Sendable {
    public struct Limits: Sendable {
        /// Longest request line, in bytes, before it is answered with 414.
        public var maxRequestLineBytes = 8 * 1024
        /// Largest header section (all field lines together), before 431. Trailers have the same budget.
        public var maxHeaderBytes = 32 * 1024
        /// Most header fields, before 431.
        public var maxHeaderCount = 100
        /// Longest chunk-size line including extensions.
        public var maxChunkLineBytes = 4 * 1024

        public init() {}
    }

    /// How the body of the request just parsed is delimited (RFC 9112 §6.3).
    public enum Framing: Equatable, Sendable {
        case none
        case length(Int)
        case chunked
    }

    public enum Event {
        case head(HTTPRequestHead)
        /// A part of the body: a view into the buffer just fed, valid until the next call.
        case body(UnsafeRawBufferPointer)
        case end(trailers: HTTPHeaders)
    }

    private enum State: Sendable {
        case requestLine
        case headerLines
        case endPending
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case trailerLines
        case failed(HTTPParseError)
    }

    public let limits: Limits
    /// The body limit for the request being read; the caller may lower or raise it after `.head`.
    public var maxBodyBytes: Int
    /// The framing of the request whose head was parsed last.
    public private(set) var framing: Framing = .none

    private var state: State = .requestLine
    /// A line that arrived in pieces, without its line ending.
    private var partialLine: [UInt8] = []
    private var requestLine: (method: HTTPMethod, target: String, version: HTTPVersion)?
    private var fields: [HTTPHeaders.Element] = []
    private var fieldBytes = 0
    private var bodyBytes = 0
    private var emptyLinesBeforeRequest = 0

    public init(limits: Limits = Limits(), maxBodyBytes: Int = 1 << 20) {
        self.limits = limits
        self.maxBodyBytes = maxBodyBytes
    }

    /// Whether no byte of a next request has been seen: the connection is idle between requests.
    public var isBetweenRequests: Bool {
        if case .requestLine = state { return partialLine.isEmpty && emptyLinesBeforeRequest == 0 }
        return false
    }

    /// Bytes of a `Content-Length` body still to come while the parser is inside one. The caller may
    /// read them into place itself and report them with `consumeFixedBody(_:)`, saving a copy.
    public var remainingFixedBody: Int? {
        if case .fixedBody(let remaining) = state, remaining <= maxBodyBytes { return remaining }
        return nil
    }

    /// Counts `count` body bytes the caller read itself; at most `remainingFixedBody`.
    public mutating func consumeFixedBody(_ count: Int) {
        guard case .fixedBody(let remaining) = state, count > 0, count <= remaining else {
            preconditionFailure("consumeFixedBody(\(count)) outside a fixed-length body")
        }
        bodyBytes += count
        state = count == remaining ? .endPending : .fixedBody(remaining: remaining - count)
    }

    /// Returns the next event from `input`, starting at `offset` and advancing it past what was
    /// consumed, or nil when every byte of `input` is consumed without completing an event.
    public mutating func next(_ input: UnsafeRawBufferPointer, at offset: inout Int) throws(HTTPParseError) -> Event? {
        do {
            return try step(input, &offset)
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private mutating func step(_ input: UnsafeRawBufferPointer, _ offset: inout Int) throws(HTTPParseError) -> Event? {
        while true {
            switch state {
            case .failed(let error):
                throw error

            case .requestLine:
                guard let line = try takeLine(input, &offset, limit: limits.maxRequestLineBytes, tooLong: .requestLineTooLong) else { return nil }
                try withLine(line, input) { parser, bytes throws(HTTPParseError) in try parser.parseRequestLine(bytes) }

            case .headerLines, .trailerLines:
                // The budget counts every line with its CRLF, the empty line that ends the section included.
                let budget = limits.maxHeaderBytes - fieldBytes - 2
                guard let line = try takeLine(input, &offset, limit: budget, tooLong: .headerSectionTooLarge) else { return nil }
                fieldBytes += line.length + 2
                if line.length == 0 {
                    if case .trailerLines = state {
                        let trailers = HTTPHeaders(fields)
                        reset()
                        return .end(trailers: trailers)
                    }
                    return .head(try finishHead())
                }
                try withLine(line, input) { parser, bytes throws(HTTPParseError) in try parser.parseFieldLine(bytes) }

            case .endPending:
                reset()
                return .end(trailers: [:])

            case .fixedBody(let remaining):
                guard bodyBytes > 0 || remaining <= maxBodyBytes else { throw .bodyTooLarge }
                guard offset < input.count else { return nil }
                bodyBytes += 1  // marks the length as checked; the count itself is `remaining`
                let count = min(remaining, input.count - offset)
                let part = UnsafeRawBufferPointer(rebasing: input[offset..<offset + count])
                offset += count
                state = count == remaining ? .endPending : .fixedBody(remaining: remaining - count)
                return .body(part)

            case .chunkSize:
                guard let line = try takeLine(input, &offset, limit: limits.maxChunkLineBytes, tooLong: .chunkLineTooLong) else { return nil }
                let size = try withLine(line, input) { _, bytes throws(HTTPParseError) in try Self.parseChunkSize(bytes) }
                if size == 0 {
                    fields = []
                    fieldBytes = 0
                    state = .trailerLines
                } else {
                    guard size <= maxBodyBytes - bodyBytes else { throw .bodyTooLarge }
                    bodyBytes += size
                    state = .chunkData(remaining: size)
                }

            case .chunkData(let remaining):
                guard offset < input.count else { return nil }
                let count = min(remaining, input.count - offset)
                let part = UnsafeRawBufferPointer(rebasing: input[offset..<offset + count])
                offset += count
                state = count == remaining ? .chunkDataCR : .chunkData(remaining: remaining - count)
                return .body(part)

            case .chunkDataCR:
                guard offset < input.count else { return nil }
                guard input[offset] == ByteClass.cr else { throw .invalidChunkTerminator }
                offset += 1
                state = .chunkDataLF

            case .chunkDataLF:
                guard offset < input.count else { return nil }
                guard input[offset] == ByteClass.lf else { throw .invalidChunkTerminator }
                offset += 1
                state = .chunkSize
            }
        }
    }

    private mutating func reset() {
        state = .requestLine
        requestLine = nil
        fields = []
        fieldBytes = 0
        bodyBytes = 0
        emptyLinesBeforeRequest = 0
    }

    // MARK: Lines

    /// Where a complete line (without CRLF) lies: in the input, or gathered in `partialLine`.
    private struct Line {
        var range: Range<Int>?
        var length: Int
    }

    /// Finds the next CRLF-terminated line. A line split across calls is gathered in `partialLine`
    /// (at most `limit` bytes of it). A LF without CR before it is refused (RFC 9112 §2.2 lets a
    /// recipient accept it; a strict server keeps framing unambiguous for every proxy in front of it).
    private mutating func takeLine(
        _ input: UnsafeRawBufferPointer, _ offset: inout Int, limit: Int, tooLong: HTTPParseError
    ) throws(HTTPParseError) -> Line? {
        let start = offset
        let available = input.count - start
        guard available > 0 else { return nil }
        guard let found = memchr(input.baseAddress! + start, Int32(ByteClass.lf), available) else {
            guard partialLine.count + available <= limit + 1 else { throw tooLong }  // +1: a CR may end it
            partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start...]))
            offset = input.count
            return nil
        }
        let lf = input.baseAddress!.distance(to: UnsafeRawPointer(found))
        offset = lf + 1
        // Length first, as on the path above: the error must not depend on where the input was split.
        guard partialLine.count + (lf - start) <= limit + 1 else { throw tooLong }
        if partialLine.isEmpty {
            guard lf > start, input[lf - 1] == ByteClass.cr else { throw .invalidLineEnding }
            guard lf - 1 - start <= limit else { throw tooLong }
            return Line(range: start..<lf - 1, length: lf - 1 - start)
        }
        partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start..<lf]))
        guard partialLine.last == ByteClass.cr else { throw .invalidLineEnding }
        partialLine.removeLast()
        guard partialLine.count <= limit else { throw tooLong }
        return Line(range: nil, length: partialLine.count)
    }

    /// Runs `body` on the bytes of `line`, wherever they are.
    private mutating func withLine<R>(
        _ line: Line, _ input: UnsafeRawBufferPointer,
        _ body: (inout HTTPRequestParser, UnsafeRawBufferPointer) throws(HTTPParseError) -> R
    ) throws(HTTPParseError) -> R {
        if let range = line.range {
            return try body(&self, UnsafeRawBufferPointer(rebasing: input[range]))
        }
        let gathered = partialLine
        partialLine.removeAll(keepingCapacity: true)
        return try gathered.withUnsafeBytes { bytes in
            Result { () throws(HTTPParseError) in try body(&self, bytes) }
        }.get()
    }

    // MARK: Request line (RFC 9112 §3)

    private mutating func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) {
        if line.isEmpty {
            // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
            emptyLinesBeforeRequest += 1
            guard emptyLinesBeforeRequest <= 4 else { throw .invalidRequestLine }
            return
        }
        guard let firstSpace = line.firstIndex(of: ByteClass.space), firstSpace > 0,
            let lastSpace = line.lastIndex(of: ByteClass.space), lastSpace > firstSpace + 1
        else { throw .invalidRequestLine }
        let method = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        let target = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)..<lastSpace])
        let version = UnsafeRawBufferPointer(rebasing: line[(lastSpace + 1)...])
        guard method.allSatisfy(ByteClass.isToken), target.allSatisfy(ByteClass.isTarget) else { throw .invalidRequestLine }
        guard target.first == UInt8(ascii: "/") || Self.isAbsoluteForm(target) || (target.count == 1 && target[0] == UInt8(ascii: "*"))
        else { throw .invalidRequestLine }
        requestLine = (
            HTTPMethod(rawValue: String(decoding: method, as: UTF8.self)), String(decoding: target, as: UTF8.self),
            try Self.parseVersion(version)
        )
        state = .headerLines
    }

    private static func isAbsoluteForm(_ target: UnsafeRawBufferPointer) -> Bool {
        let text = String(decoding: target.prefix(8), as: UTF8.self).lowercased()
        return text.hasPrefix("http://") || text.hasPrefix("https://")
    }

    /// HTTP-version = "HTTP/" DIGIT "." DIGIT. A 1.x minor above 1 is served as 1.1 (RFC 9110 §6.2).
    private static func parseVersion(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> HTTPVersion {
        guard bytes.count == 8, bytes.starts(with: "HTTP/".utf8), bytes[6] == UInt8(ascii: "."),
            let major = decimalDigit(bytes[5]), let minor = decimalDigit(bytes[7])
        else { throw .invalidRequestLine }
        guard major == 1 else { throw .unsupportedVersion }
        return minor == 0 ? .http1_0 : .http1_1
    }

    private static func decimalDigit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? Int(byte - UInt8(ascii: "0")) : nil
    }

    // MARK: Field lines (RFC 9112 §5)

    private mutating func parseFieldLine(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) {
        // RFC 9112 §5.2: obs-fold is refused rather than unfolded.
        guard !ByteClass.isWhitespace(line[0]) else { throw .obsoleteLineFolding }
        guard fields.count < limits.maxHeaderCount else { throw .tooManyHeaderFields }
        // RFC 9112 §5.1: no white space between the name and the colon.
        guard let colon = line.firstIndex(of: ByteClass.colon), colon > 0 else { throw .invalidHeaderName }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        guard name.allSatisfy(ByteClass.isToken) else { throw .invalidHeaderName }
        var start = colon + 1
        var end = line.count
        while start < end, ByteClass.isWhitespace(line[start]) { start += 1 }
        while end > start, ByteClass.isWhitespace(line[end - 1]) { end -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[start..<end])
        guard value.allSatisfy(ByteClass.isFieldValue) else { throw .invalidHeaderValue }
        fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    private mutating func finishHead() throws(HTTPParseError) -> HTTPRequestHead {
        guard let requestLine else { throw .invalidRequestLine }
        let head = HTTPRequestHead(
            method: requestLine.method, target: requestLine.target, version: requestLine.version,
            headers: HTTPHeaders(fields))
        framing = try Self.framing(of: head)
        bodyBytes = 0
        switch framing {
        case .none: state = .endPending
        case .length(let length): state = length == 0 ? .endPending : .fixedBody(remaining: length)
        case .chunked: state = .chunkSize
        }
        fields = []
        fieldBytes = 0
        return head
    }

    /// RFC 9112 §3.2, §6.1 and §6.3: the Host rule and the rules that keep two parsers from
    /// disagreeing on where a body ends. One pass over the fields; nothing is allocated unless a
    /// field concerned is present.
    static func framing(of head: HTTPRequestHead) throws(HTTPParseError) -> Framing {
        var hosts = 0
        var host = ""
        var codings: [Substring] = []
        var hasTransferEncoding = false
        var length: Int?
        for field in head.headers {
            switch field.name.utf8.count {
            case 4 where field.name.equalsASCIICaseInsensitive("Host"):
                hosts += 1
                host = field.value
            case 14 where field.name.equalsASCIICaseInsensitive("Content-Length"):
                // RFC 9110 §8.6: a list of identical values may be taken as one; different values may not.
                for element in field.value.split(separator: ",", omittingEmptySubsequences: false) {
                    let value = try contentLength(element.trimmingOWS())
                    if let length, length != value { throw .conflictingContentLength }
                    length = value
                }
            case 17 where field.name.equalsASCIICaseInsensitive("Transfer-Encoding"):
                hasTransferEncoding = true
                codings += field.value.split(separator: ",").map { $0.trimmingOWS() }.filter { !$0.isEmpty }
            default:
                break
            }
        }
        if hosts > 1 { throw .multipleHost }
        // RFC 9112 §3.2: a 1.1 request without Host is answered 400.
        if hosts == 0 && head.version == .http1_1 { throw .missingHost }
        if hosts == 1 && !HostField.isValid(host) { throw .invalidHost }
        if hasTransferEncoding {
            guard head.version == .http1_1 else { throw .transferEncodingInHTTP10 }
            guard length == nil else { throw .contentLengthWithTransferEncoding }
            guard let last = codings.last, last.equalsASCIICaseInsensitive("chunked") else { throw .chunkedNotFinal }
            guard codings.count == 1 else {
                if codings.dropLast().contains(where: { $0.equalsASCIICaseInsensitive("chunked") }) { throw .chunkedNotFinal }
                throw .unsupportedTransferCoding
            }
            return .chunked
        }
        return length.map { .length($0) } ?? .none
    }

    /// 1*DIGIT; a length too long to represent is certainly larger than any limit.
    private static func contentLength(_ digits: Substring) throws(HTTPParseError) -> Int {
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw .invalidContentLength
        }
        let significant = digits.drop { $0 == "0" }
        return significant.utf8.count > 18 ? Int.max : Int(significant) ?? 0
    }

    // MARK: Chunks (RFC 9112 §7.1)

    /// chunk-size [ chunk-ext ]; extensions are checked for characters and ignored.
    private static func parseChunkSize(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) -> Int {
        var size = 0
        var index = 0
        while index < line.count, let digit = ByteClass.hexValue(line[index]) {
            guard size <= (Int.max - digit) / 16 else { throw .bodyTooLarge }
            size = size * 16 + digit
            index += 1
        }
        guard index > 0 else { throw .invalidChunkSize }
        var rest = index
        while rest < line.count, ByteClass.isWhitespace(line[rest]) { rest += 1 }
        if rest < line.count {
            guard line[rest] == UInt8(ascii: ";"),
                line[rest...].allSatisfy({ ByteClass.isFieldValue($0) })
            else { throw .invalidChunkSize }
        }
        return size
    }
}
