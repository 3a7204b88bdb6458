import Foundation
import HTTPServer
import TestSupport
import Testing

@testable import Jobs

@Suite("Output store")
struct OutputStoreTests {
    static func makeStore(retention: Duration = .seconds(3600)) throws -> OutputStore {
        try OutputStore(
            folder: Scratch.path("outputs"),
            retention: retention)
    }

    @Test func filesAreKeptUnderNamesThatCannotBeGuessed() throws {
        let store = try Self.makeStore()
        let name = try store.save([0xFF, 0xD8, 0xFF], as: .jpeg)
        #expect(name.hasSuffix(".jpg") && name.count == 43 + 4)
        let file = try #require(store.file(named: name))
        #expect(file.head == [0xFF, 0xD8, 0xFF] && file.size == 3 && file.kind == .jpeg && file.keptFor > .seconds(3590))
        var names: Set<String> = []
        for _ in 0..<500 { names.insert(try store.save([1], as: .png)) }
        #expect(names.count == 500)
    }

    /// A file's time is the file system's, which can be any (a tmpfs takes hundreds of millions of
    /// years): converted to milliseconds unchecked, it stopped the gateway on the file's download.
    @Test func aFilesTimeOfAnyAgeLeavesSomeOrNoneOfTheRetention() {
        let hour = Duration.seconds(3600)
        #expect(OutputStore.keptFor(hour, age: 600) == .seconds(3000))
        #expect(OutputStore.keptFor(hour, age: 7200) == .zero)
        #expect(OutputStore.keptFor(hour, age: -600) == hour, "modified in the future: kept for the retention, no longer")
        for age in [9.3e15, -9.3e15, .infinity, -.infinity, .nan, .greatestFiniteMagnitude] {
            #expect((.zero...hour).contains(OutputStore.keptFor(hour, age: age)), "\(age)")
        }
    }

    @Test func theImagesOfOneRequestShareARandomPrefixAndAreNumbered() throws {
        let store = try Self.makeStore()
        let (prefix, names) = OutputStore.newNames(3, .png)
        #expect(prefix.count == 43 && names == ["\(prefix)-0.png", "\(prefix)-1.png", "\(prefix)-2.png"])
        try store.save([7], named: names[2])
        #expect(store.file(named: names[2])?.head == [7])
        #expect(OutputStore.newNames(1, .png).prefix != prefix)
    }

    @Test(arguments: [
        "", "x.jpg", "../../etc/passwd", String(repeating: "a", count: 43) + ".exe",
        String(repeating: "a", count: 42) + "/.jpg", String(repeating: "a", count: 43) + ".jpg.jpg",
        String(repeating: "a", count: 43) + ".jpg", String(repeating: "a", count: 43) + "-.png",
        String(repeating: "a", count: 43) + "-1234.png", String(repeating: "a", count: 43) + "-1x.png",
        String(repeating: "a", count: 43) + "_1.png",
    ])
    func namesThatAreNotStoredFilesAreNotFound(name: String) throws {
        #expect(try Self.makeStore().file(named: name) == nil)
    }

    @Test func theSweepDeletesFilesOlderThanTheRetention() throws {
        let store = try Self.makeStore(retention: .seconds(60))
        let old = try store.save([1], as: .jpeg), fresh = try store.save([2], as: .jpeg)
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-61)],
            ofItemAtPath: store.folder.appendingPathComponent(old).path)
        #expect(store.sweep() == 1)
        #expect(store.file(named: old) == nil)
        #expect(store.file(named: fresh) != nil)
    }

    @Test func filesAreServedWithTheirTypeAndCachingAndNothingElseIs() async throws {
        let store = try Self.makeStore()
        let name = try store.save(Array("iVBORw0KGgo=".utf8), as: .base64)
        var router = Router()
        OutputRoutes(store: store).register(on: &router)
        var configuration = HTTPServer.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        let server = try HTTPServer(configuration: configuration, responder: router)
        let base = "http://127.0.0.1:\(try server.start().port)/generations/"

        let found = try await Command.run("curl", ["-sS", "-i", base + name])
        #expect(found.output.hasPrefix("HTTP/1.1 200"))
        #expect(found.output.contains("Content-Type: text/plain; charset=utf-8"))
        #expect(found.output.contains("Cache-Control: private, max-age="))
        #expect(found.output.hasSuffix("iVBORw0KGgo="))
        // Named before it existed, a `.png` may hold the JPEG a backend made: its bytes decide the type.
        let jpeg = OutputStore.newNames(1, .png).names[0]
        try store.save(TestImages.jpeg(width: 8, height: 8), named: jpeg)
        let image = try await Command.run("curl", ["-sS", "-o", "/dev/null", "-w", "%{content_type}", base + jpeg])
        #expect(image.output == "image/jpeg")
        for missing in ["", String(repeating: "A", count: 43) + ".jpg", "..%2F..%2Fetc%2Fpasswd", name + "x"] {
            let answer = try await Command.run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", base + missing])
            #expect(answer.output == "404", "\(missing)")
        }
        await server.shutdown()
    }
}
