import MultipartKit

/// A `multipart/form-data` body (RFC 7578) read into its parts by multipart-kit's parser, within
/// limits: the body is bounded already by its route, the number of parts here.
struct MultipartForm {
    struct Part {
        let name: String
        let bytes: [UInt8]

        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    let parts: [Part]

    /// More parts than any client of these APIs sends: a body of a million empty parts is refused
    /// rather than kept.
    static let maxParts = 64

    /// More header lines in one part than a client sends (`Content-Disposition`, `Content-Type`, a
    /// few more): the parser keeps each one it reads.
    static let maxHeaderLines = 16

    /// Why a body is not a form this gateway reads, in words for the client.
    struct Problem: Error {
        let reason: String
    }

    /// Whether the Content-Type says multipart/form-data, whatever its parameters.
    static func isMultipart(_ contentType: String?) -> Bool {
        contentType?.split(separator: ";").first?.trimmingSpaces().lowercased() == "multipart/form-data"
    }

    init(body: [UInt8], contentType: String?) throws(Problem) {
        guard Self.isMultipart(contentType), let contentType else { throw Problem(reason: "Content-Type must be multipart/form-data") }
        guard let boundary = Self.boundary(in: contentType) else {
            throw Problem(reason: "the multipart/form-data Content-Type needs a boundary of 1 to 70 characters")
        }
        // The parser drops a part it never saw the end of: a body cut short must not pass for a
        // smaller form. The closing delimiter ends the body, give or take an epilogue, and starts
        // a line (the same text inside a header line of a part cut short is not one).
        let closing = Array("\r\n--\(boundary)--".utf8)
        guard body.suffix(closing.count + 4096).firstRange(of: closing) != nil || body.starts(with: closing.dropFirst(2)) else {
            throw Problem(reason: "the multipart body is incomplete: its closing boundary is missing")
        }
        try Self.checkHeaders(of: body, boundary: boundary)
        var parts: [Part] = []
        var headers: [(String, String)] = []
        var bytes: [UInt8] = []
        var tooMany = false
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { name, value in headers.append((name, value)) }
        parser.onBody = { buffer in bytes.append(contentsOf: buffer.readableBytesView) }
        parser.onPartComplete = {
            if parts.count >= Self.maxParts {
                tooMany = true
            } else {
                let disposition = headers.first { $0.0.lowercased() == "content-disposition" }?.1
                parts.append(Part(name: disposition.flatMap { Self.parameter("name", in: $0) } ?? "", bytes: bytes))
            }
            (headers, bytes) = ([], [])
        }
        do {
            try parser.execute(body)
        } catch {
            throw Problem(reason: "the multipart body is malformed")
        }
        guard !tooMany else { throw Problem(reason: "the multipart body has more than \(Self.maxParts) parts") }
        self.parts = parts
    }

    /// Reads each part's header lines before the parser does, and refuses a form that has more
    /// than `maxHeaderLines` in a part, or a byte above 0x7F in a header's name: multipart-kit's
    /// parser looks every name byte up in a table of 128 entries and traps past it (a member's
    /// edit request once stopped the gateway so). Header lines follow a delimiter (`--boundary`
    /// and a line end), up to the first empty line. Every delimiter is taken for one, wherever it
    /// stands: the parser finds the first one anywhere in the preamble (`x--boundary` too), and a
    /// client's boundary appears nowhere else in its form. Delimiters that overlap are each taken:
    /// the parser's search in the preamble does not go back, so with a boundary such as `a--` it
    /// passes over the first of `--a--a--` and takes the second.
    static func checkHeaders(of body: [UInt8], boundary: String) throws(Problem) {
        let delimiter = Array("--\(boundary)".utf8), lineEnd: [UInt8] = [13, 10]
        var searchFrom = body.startIndex
        while let found = body[searchFrom...].firstRange(of: delimiter) {
            searchFrom = found.lowerBound + 1
            // Otherwise the closing delimiter (`--` follows), or text that only looks like one.
            guard body[found.upperBound...].starts(with: lineEnd) else { continue }
            var line = found.upperBound + 2, count = 0
            while line < body.endIndex {
                let end = body[line...].firstRange(of: lineEnd)?.lowerBound ?? body.endIndex
                if end == line { break }
                count += 1
                guard count <= maxHeaderLines else {
                    throw Problem(reason: "a part of the multipart body has more than \(maxHeaderLines) header lines")
                }
                guard body[line..<end].prefix(while: { $0 != UInt8(ascii: ":") }).allSatisfy({ $0 < 0x80 }) else {
                    throw Problem(reason: "the multipart body is malformed: a header name that is not ASCII")
                }
                line = end + 2
            }
        }
    }

    /// `boundary=...`, quoted or not (RFC 2046 §5.1.1: 1 to 70 characters).
    static func boundary(in contentType: String) -> String? {
        guard let value = parameter("boundary", in: contentType), (1...70).contains(value.utf8.count) else { return nil }
        return value
    }

    /// A parameter of a header value such as `form-data; name="image"; filename="a.png"`.
    static func parameter(_ name: String, in header: String) -> String? {
        for item in header.split(separator: ";").dropFirst() {
            let pair = item.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingSpaces().lowercased() == name else { continue }
            let value = pair[1].trimmingSpaces()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { return String(value.dropFirst().dropLast()) }
            return String(value)
        }
        return nil
    }
}
