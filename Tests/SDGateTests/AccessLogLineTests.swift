import Foundation
import HTTPServer
import Logging
import Testing

@testable import SDGateApp

#if canImport(Glibc)
import Glibc
#endif

/// The access log writes its lines itself when the log is the buffered one: they must read exactly
/// as the lines swift-log's handler writes, which every other line of the log is.
@Suite("Access log lines")
struct AccessLogLineTests {
    /// The lines `write` logs through a buffered output on a pipe, as read from it.
    static func lines(_ write: (Logger, BufferedLogOutput) -> Void) -> [Substring] {
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        defer { close(descriptors[0]) }
        let output = BufferedLogOutput(fileDescriptor: descriptors[1])
        write(Logger(label: "sdgate") { label in BufferedLogHandler(label: label, output: output) }, output)
        output.close()
        close(descriptors[1])
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case let count = read(descriptors[0], &chunk, chunk.count), count > 0 { bytes += chunk.prefix(count) }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n")
    }

    @Test func theDirectLineReadsAsTheHandlersLine() async throws {
        let lines = Self.lines { handled, output in
            let direct = AccessLog(logger: handled, metrics: GatewayMetrics(), output: output)
            let throughLogger = AccessLog(logger: handled, metrics: GatewayMetrics(), output: nil)
            for log in [direct, throughLogger] {
                log.answered(.post, route: "/v1/{slug}", status: .unauthorized, duration: .microseconds(1234), requestID: "00000000000000ab")
            }
        }
        #expect(lines.count == 2)
        // The time may have turned a second between the two: everything after it must be the same.
        let afterTime = lines.map { $0.drop { $0 != " " } }
        #expect(afterTime.first == afterTime.last, "\(lines)")
        #expect(
            afterTime.first
                == " info sdgate: duration_ms=1.234 method=POST request_id=00000000000000ab route=/v1/{slug} status=401 [SDGateApp] request")
    }

    /// Words from outside (an upstream's error echoing a member's prompt) cannot forge a line or
    /// move a terminal's cursor: control characters are written escaped. A method of kilobytes
    /// (any token is one) is logged as `other`, as the metrics label it.
    @Test func controlCharactersAndStrangeMethodsCannotForgeOrSwellALine() async throws {
        let lines = Self.lines { handled, output in
            handled.warning(
                "upstream failed", metadata: ["error": "bad prompt\n2026-12-07T00:00:00+0000 critical sdgate: forged\u{1b}[2J"])
            let direct = AccessLog(logger: handled, metrics: GatewayMetrics(), output: output)
            direct.answered(
                HTTPMethod(rawValue: String(repeating: "X", count: 8000)), route: "/health", status: .methodNotAllowed, duration: .zero,
                requestID: "00000000000000ab")
        }
        #expect(lines.count == 2, "\(lines)")
        #expect(
            lines.first?.hasSuffix(#"error=bad prompt\u{a}2026-12-07T00:00:00+0000 critical sdgate: forged\u{1b}[2J [SDGateTests] upstream failed"#)
                == true, "\(lines)")
        #expect(lines.last?.contains(" method=other ") == true && (lines.last?.count ?? 0) < 200, "\(lines)")
    }
}
