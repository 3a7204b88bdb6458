import Testing

@testable import GatewayAPI

/// What the gateway reads of a part's headers before multipart-kit's parser sees them.
@Suite("Multipart form")
struct MultipartFormTests {
    static let contentType = "multipart/form-data; boundary=XB"

    static func form(_ parts: [(headers: [String], body: String)]) -> [UInt8] {
        var body: [UInt8] = []
        for part in parts {
            body += Array("--XB\r\n".utf8)
            for header in part.headers { body += Array("\(header)\r\n".utf8) }
            body += Array("\r\n\(part.body)\r\n".utf8)
        }
        return body + Array("--XB--\r\n".utf8)
    }

    static func reason(_ body: [UInt8]) -> String? {
        do {
            _ = try MultipartForm(body: body, contentType: contentType)
            return nil
        } catch {
            return error.reason
        }
    }

    /// A form cut short is refused, even when the text of its closing delimiter stands in a header
    /// line of its last part: that part was dropped, and the rest read as the whole form.
    @Test func aFormCutShortIsRefusedWhateverTextItEndsWith() throws {
        let whole = Self.form([(["Content-Disposition: form-data; name=\"a\""], "1")])
        #expect(Self.reason(whole) == nil)
        let cut = Array(whole.dropLast("--XB--\r\n".utf8.count)) + Array("--XB\r\nContent-Disposition: form-data; name=\"image\"\r\nX: --XB--".utf8)
        #expect(Self.reason(cut) == "the multipart body is incomplete: its closing boundary is missing")
        #expect(
            Self.reason(Array("--XB--\r\n".utf8)) != "the multipart body is incomplete: its closing boundary is missing", "an empty form is whole")
    }

    /// A value may be UTF-8 (browsers send file names so); a name may not, in any part; and a
    /// part may have sixteen header lines, not seventeen.
    @Test func headerNamesAreASCIIAndFewEnough() throws {
        let accepted = try MultipartForm(
            body: Self.form([
                (["Content-Disposition: form-data; name=\"image\"; filename=\"café.png\""], "png"),
                (["Content-Disposition: form-data; name=\"prompt\""] + Array(repeating: "X-Note: ünïcode", count: 15), "a fox"),
            ]), contentType: Self.contentType)
        #expect(accepted.parts.map(\.name) == ["image", "prompt"] && accepted.parts.map(\.text) == ["png", "a fox"])

        let highByte = "the multipart body is malformed: a header name that is not ASCII"
        #expect(Self.reason(Array("--XB\r\n".utf8) + [0x80] + Array("a: x\r\n\r\nhi\r\n--XB--\r\n".utf8)) == highByte)
        #expect(Self.reason(Self.form([(["Content-Disposition: form-data; name=\"a\""], "1"), (["Nämé: x"], "2")])) == highByte)
        #expect(
            Self.reason(Self.form([(Array(repeating: "a: b", count: 17), "x")]))
                == "a part of the multipart body has more than 16 header lines")
        // The parser takes the first delimiter wherever it stands in the preamble, even within a
        // line, and a run of hyphens before it (a random search once stopped the gateway so).
        for preamble in ["x", "---", "a\r\nb-"] {
            #expect(
                Self.reason(Array(preamble.utf8) + Array("--XB\r\n".utf8) + [0xC3, 0xA9] + Array("a: x\r\n\r\nhi\r\n--XB--\r\n".utf8)) == highByte)
        }
        // After a preamble, and after a body that only looks like a delimiter.
        #expect(Self.reason(Array("preamble\r\n".utf8) + Self.form([(["Ä: x"], "1")])) == highByte)
        #expect(Self.reason(Self.form([(["Content-Disposition: form-data; name=\"a\""], "--XBnot\r\n--XB"), (["Ö: x"], "2")])) == highByte)
    }

    /// A boundary whose delimiter overlaps itself (`--a--` in `--a--a--`): the parser's search does
    /// not go back, passes over the first and takes the second, whose header lines are checked too
    /// (only the first was, and the parser trapped on the name's byte past 0x7F).
    @Test func aDelimiterOverlappingAnotherHasItsHeadersChecked() {
        let body = Array("---a--a--\r\nH".utf8) + [0xFF] + Array(": v\r\n\r\nx\r\n--a----\r\n".utf8)
        do {
            _ = try MultipartForm(body: body, contentType: "multipart/form-data; boundary=a--")
            Issue.record("the form was read")
        } catch {
            #expect(error.reason == "the multipart body is malformed: a header name that is not ASCII")
        }
    }
}
