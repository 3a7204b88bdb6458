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
    @Test func theDirectLineReadsAsTheHandlersLine() async throws {
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        defer { close(descriptors[0]) }
        let output = BufferedLogOutput(fileDescriptor: descriptors[1])
        let handled = Logger(label: "sdgate") { label in BufferedLogHandler(label: label, output: output) }
        let direct = AccessLog(logger: handled, metrics: GatewayMetrics(), output: output)
        let throughLogger = AccessLog(logger: handled, metrics: GatewayMetrics(), output: nil)
        for log in [direct, throughLogger] {
            log.answered(.post, route: "/v1/{slug}", status: .unauthorized, duration: .microseconds(1234), requestID: "00000000000000ab")
        }
        output.close()
        close(descriptors[1])
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case let count = read(descriptors[0], &chunk, chunk.count), count > 0 { bytes += chunk.prefix(count) }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        // The time may have turned a second between the two: everything after it must be the same.
        let afterTime = lines.map { $0.drop { $0 != " " } }
        #expect(afterTime.first == afterTime.last, "\(lines)")
        #expect(
            afterTime.first
                == " info sdgate: duration_ms=1.234 method=POST request_id=00000000000000ab route=/v1/{slug} status=401 [SDGateApp] request")
    }
}
