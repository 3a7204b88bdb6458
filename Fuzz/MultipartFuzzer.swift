// libFuzzer target for what a multipart/form-data request (the OpenAI images edit and variation
// routes) goes through before its fields are read: `MultipartForm`, its own checks of the
// Content-Type and of the part headers, and multipart-kit's parser behind them. Compiled by
// Fuzz/run into one module with MultipartForm's sources; the parser is compiled apart, instrumented,
// over swift-nio's ByteBuffer alone. Not part of the Swift package.
//
// Input: the first byte picks the mode; the rest, up to the first line feed, is the Content-Type
// as a client sent it, and what follows that line feed is the body (all of the rest when there is
// none). A client sends both, and the boundary the body is split on comes from the Content-Type.
// - Bit 0 set: the closing delimiter (CRLF, `--`, the boundary MultipartForm reads from the
//   Content-Type, `--`, CRLF) is appended to the body, so that most mutations still get past the
//   check for a body cut short and reach the parser; clear, the body is taken as it is.
//
// Traps (a crash to libFuzzer) when:
// - a form is read with more than `MultipartForm.maxParts` parts;
// - a part's bytes are not bytes of the body followed by a delimiter (CRLF, `--`, the boundary),
//   in the order of the parts: the parser hands a part over in pieces, split wherever the body
//   starts to look like a delimiter, and they must add up to what the client sent;
// - a refusal gives no reason.
// Any trap on the way is a crash too: multipart-kit's parser looks a header name's bytes up in a
// table of 128 entries, and a byte above 0x7F once stopped the gateway so.

// MARK: Checks

private func fail(_ message: String, _ input: [UInt8]) -> Never {
    fatalError("\(message); input (\(input.count) bytes) = \"\(escaped(input))\"")
}

/// Each part's bytes followed by the delimiter, found in the body after the previous part's: the
/// earliest match for each leaves the later parts' true places ahead, so a form the parser read
/// right always passes.
private func checkParts(_ form: MultipartForm, body: [UInt8], boundary: String, _ input: [UInt8]) {
    if form.parts.count > MultipartForm.maxParts { fail("\(form.parts.count) parts read, more than \(MultipartForm.maxParts)", input) }
    let delimiter = Array("\r\n--\(boundary)".utf8)
    var searchFrom = body.startIndex
    for (index, part) in form.parts.enumerated() {
        guard let found = body[searchFrom...].firstRange(of: part.bytes + delimiter) else {
            fail("part \(index) (\(part.name.debugDescription), \(part.bytes.count) bytes) is not the body's bytes before a delimiter", input)
        }
        searchFrom = found.upperBound
    }
}

// MARK: Entry

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = input.first else { return 0 }
    let rest = input.dropFirst()
    let lineEnd = rest.firstIndex(of: UInt8(ascii: "\n")) ?? rest.endIndex
    let contentType = String(decoding: rest[..<lineEnd], as: UTF8.self)
    var body = Array(rest[lineEnd...].dropFirst())
    let boundary = MultipartForm.boundary(in: contentType)
    if mode & 1 == 1, let boundary { body += Array("\r\n--\(boundary)--\r\n".utf8) }
    do {
        let form = try MultipartForm(body: body, contentType: contentType)
        // A form is read only with a boundary: the Content-Type is checked first.
        guard let boundary else { fail("a form read without a boundary in \(contentType.debugDescription)", input) }
        checkParts(form, body: body, boundary: boundary, input)
        if printsEachInput { printLine(form.parts.map { "\($0.name.debugDescription): \($0.bytes.count) bytes" }.joined(separator: ", ")) }
    } catch {
        if error.reason.isEmpty { fail("a refusal without a reason", input) }
        if printsEachInput { printLine("refused: \(error.reason)") }
    }
    return 0
}
