import Foundation
import GenerationCore
import HTTPServer
import TestSupport
import Testing

@testable import GatewayAPI

/// The Segmind dialect's answers, for every model of the shipped catalog, against golden files in
/// `Tests/GatewayAPITests/Golden/<model>.txt`: status, the headers clients read, and the body.
///
/// The cases are made from the catalog: a minimal and a full request, numeric strings, every bound
/// exceeded, every field with a wrong type, every bad enum value, every required field missing,
/// unknown fields, bad base64, bytes that are no image, an oversized image, a data URI, the binary
/// answer and several samples. `SDGATE_TEST_RECORD_GOLDEN=1 swift test` writes the files anew; read the
/// diff before committing it.
@Suite("Segmind golden answers")
struct SegmindGoldenTests {
    static let models = ShippedCatalog.catalog.models.keys.sorted()

    @Test(arguments: models)
    func answersMatchTheGoldenFile(slug: String) async throws {
        let model = try #require(ShippedCatalog.catalog[slug])
        var transcript = ""
        for testCase in GoldenCases.cases(for: model) {
            let backend = FakeBackend()
            let dialect = SegmindDialect(
                admission: Admission(catalog: ShippedCatalog.catalog, gate: TestGate(), images: ImageLoader(fetcher: nil)),
                backend: backend, randomSeed: { 4242 })
            let body = try JSONSerialization.data(withJSONObject: testCase.body, options: [.sortedKeys, .withoutEscapingSlashes])
            let request = HTTPRequest(
                head: HTTPRequestHead(
                    method: .post, target: "/v1/\(slug)",
                    headers: ["Host": "t", "x-api-key": TestGate.key, "Content-Type": "application/json"]),
                body: Array(body))
            let response = await dialect.handle(request, slug: slug)
            transcript += GoldenCases.render(testCase, response, backendCalls: backend.requests.count)
        }
        let path = Repository.path("Tests/GatewayAPITests/Golden/\(slug).txt")
        if ProcessInfo.processInfo.environment["SDGATE_TEST_RECORD_GOLDEN"] == "1" {
            try transcript.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let golden = try String(contentsOfFile: path, encoding: .utf8)
        let expected = golden.components(separatedBy: "\n## "), actual = transcript.components(separatedBy: "\n## ")
        // Compare case by case, so a failure names the case rather than dumping the file.
        for (want, got) in zip(expected, actual) where want != got {
            Issue.record("\(slug): case differs\n--- golden\n## \(want)\n--- now\n## \(got)")
        }
        #expect(expected.count == actual.count, "\(slug): \(actual.count) cases, golden file has \(expected.count)")
    }
}

/// The requests each model is tried with, derived from its catalog entry.
enum GoldenCases {
    struct Case {
        let name: String
        let body: [String: Any]
    }

    static let inputPNG = TestImages.png(width: 100, height: 70)
    static var inputBase64: String { Data(inputPNG).base64EncodedString() }

    static func cases(for model: ModelSpec) -> [Case] {
        let minimal = minimalBody(model)
        var cases = [Case(name: "minimal valid request", body: minimal)]
        cases.append(Case(name: "full valid request", body: fullBody(model)))
        cases.append(Case(name: "numeric strings", body: minimal.merging(numericStrings(model)) { $1 }))
        for field in model.fields {
            if let minimum = field.minimum, field.type != .seed {
                let below: Any = field.type == .integer ? Int(minimum) - 1 : minimum - 0.05
                cases.append(Case(name: "\(field.name) below its minimum", body: minimal.merging([field.name: below]) { $1 }))
            }
            if let maximum = field.maximum, field.type != .seed {
                let above: Any = field.type == .integer ? Int(maximum) + 1 : maximum + 0.05
                cases.append(Case(name: "\(field.name) above its maximum", body: minimal.merging([field.name: above]) { $1 }))
            }
            if field.type == .integer, let allowed = field.allowed, case .integer(let largest)? = allowed.last {
                cases.append(Case(name: "\(field.name) not an allowed value", body: minimal.merging([field.name: Int(largest) + 1]) { $1 }))
            }
            cases.append(Case(name: "\(field.name) of the wrong type", body: minimal.merging([field.name: wrongType(field)]) { $1 }))
            if field.type == .enumeration {
                cases.append(Case(name: "\(field.name) not one of its values", body: minimal.merging([field.name: "not-a-value"]) { $1 }))
            }
            if field.required {
                cases.append(Case(name: "\(field.name) missing", body: minimal.filter { $0.key != field.name }))
            }
        }
        cases.append(Case(name: "unknown fields are ignored", body: minimal.merging(["shape": "round", "high_noise_frac": 0.3, "file": "x"]) { $1 }))
        if let image = model.field(.image) {
            let imageCases: [(String, Any)] = [
                ("bad base64", "%%% not base64 %%%"),
                ("bytes that are no image", Data("hello, this is plain text".utf8).base64EncodedString()),
                ("an oversized image", Data(TestImages.png(width: 4096, height: 4096)).base64EncodedString()),
                ("a data URI", "data:image/png;base64," + inputBase64),
                ("a data URI of another type", "data:text/plain;base64," + inputBase64),
                ("an image URL while URLs are not fetched", "http://127.0.0.1:9/cat.png"),
            ]
            for (name, value) in imageCases {
                cases.append(Case(name: "image: \(name)", body: minimal.merging([image.name: value]) { $1 }))
            }
        }
        if let base64 = model.field(.base64), let samples = model.field(.samples) {
            cases.append(
                Case(
                    name: "binary answer: one image whatever samples says",
                    body: minimal.merging([base64.name: false, samples.name: 3]) { $1 }))
            cases.append(Case(name: "two samples as a list", body: minimal.merging([samples.name: 2]) { $1 }))
        }
        return cases
    }

    static func minimalBody(_ model: ModelSpec) -> [String: Any] {
        var body: [String: Any] = [:]
        for field in model.fields where field.required {
            body[field.name] = field.type == .image ? inputBase64 : "a lighthouse at dusk"
        }
        return body
    }

    /// A valid value other than the default for every field.
    static func fullBody(_ model: ModelSpec) -> [String: Any] {
        var body = minimalBody(model)
        for field in model.fields where body[field.name] == nil {
            switch field.type {
            case .enumeration, .integer:
                if let last = field.allowed?.last {
                    body[field.name] = last.asDouble.map { Int($0) as Any } ?? last.description
                } else if let maximum = field.maximum {
                    body[field.name] = Int(maximum)
                } else {
                    body[field.name] = field.defaultValue?.asDouble.map { Int($0) } ?? 1
                }
            case .number: body[field.name] = field.maximum ?? 1.5
            case .boolean: body[field.name] = field.name == "base64" ? true : !(field.defaultValue == .boolean(true))
            case .seed: body[field.name] = 98_877_465_625
            case .string: body[field.name] = "blurry, low quality"
            case .image: body[field.name] = inputBase64
            }
        }
        if let sizes = model.sizes, let width = model.field(.width), let height = model.field(.height), let size = sizes.last {
            body[width.name] = size.width
            body[height.name] = size.height
        }
        return body
    }

    static func numericStrings(_ model: ModelSpec) -> [String: Any] {
        var body: [String: Any] = [:]
        for field in model.fields {
            switch field.type {
            case .integer: body[field.name] = (field.defaultValue ?? .integer(1)).description
            case .number: body[field.name] = String(field.defaultValue?.asDouble ?? 1)
            case .seed: body[field.name] = "98877465625"
            default: break
            }
        }
        return body
    }

    static func wrongType(_ field: FieldSpec) -> Any {
        switch field.type {
        case .string, .enumeration, .image: 12
        case .integer, .number, .seed: "lots"
        case .boolean: "maybe"
        }
    }

    /// One case as the golden file shows it; the input image's base64 is replaced by a short name.
    static func render(_ testCase: Case, _ response: HTTPResponse, backendCalls: Int) -> String {
        let request =
            (try? JSONSerialization.data(withJSONObject: testCase.body, options: [.sortedKeys, .withoutEscapingSlashes]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "?"
        var text = "\n## \(testCase.name)\n> \(shorten(request))\n< \(response.status.code)\n"
        for name in ["Content-Type", "Retry-After", "x-cost", "x-generation-time", "x-remaining-credits", "x-seed-value"] {
            if let value = response.headers[name] { text += "< \(name.lowercased()): \(value)\n" }
        }
        text += "< backend calls: \(backendCalls)\n"
        if case .bytes(let bytes) = response.body {
            let isText = response.headers["Content-Type"]?.hasPrefix("application/json") == true
            text +=
                isText
                ? shorten(String(decoding: bytes, as: UTF8.self)) + "\n"
                : "<\(bytes.count) bytes: \(bytes == FakeBackend.outputJPEG ? "the backend's JPEG" : "other")>\n"
        }
        return text
    }

    private static func shorten(_ text: String) -> String {
        text.replacingOccurrences(of: inputBase64, with: "<PNG 100x70>")
            .replacingOccurrences(of: Data(FakeBackend.outputJPEG).base64EncodedString(), with: "<the backend's JPEG>")
            .replacingOccurrences(of: Data(TestImages.png(width: 4096, height: 4096)).base64EncodedString(), with: "<PNG 4096x4096>")
    }
}
