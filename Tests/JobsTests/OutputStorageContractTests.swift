import Foundation
import GenerationCore
import HTTPServer
import Ledger
import TestSupport
import Testing

@testable import Jobs

/// The output stores a gateway may keep its images in: files (one gateway's folder, or a folder
/// replicas share), the database twin in memory, and PostgreSQL's table, which replicas share.
/// PostgreSQL needs SDGATE_TEST_POSTGRES_URL.
enum OutputSubject: String, CaseIterable, CustomStringConvertible {
    case files
    case memory
    case postgres

    var description: String { rawValue }

    static var available: [OutputSubject] { allCases.filter { $0 != .postgres || TestPostgres.url != nil } }

    /// A fresh store, and another on the same storage as another replica opens it.
    func make(retention: Duration = .seconds(3600)) async throws -> (store: any OutputStorage, replica: any OutputStorage) {
        switch self {
        case .files:
            let folder = Scratch.path("outputs")
            return (try OutputStore(folder: folder, retention: retention), try OutputStore(folder: folder, retention: retention))
        case .memory:
            let records = InMemoryOutputRecords()
            return (DatabaseOutputStore(records: records, retention: retention), DatabaseOutputStore(records: records, retention: retention))
        case .postgres:
            let url = try await TestPostgres.freshDatabase("outputs")
            let (first, second) = (try await PostgresLedger(url: url), try await PostgresLedger(url: url))
            return (DatabaseOutputStore(records: first, retention: retention), DatabaseOutputStore(records: second, retention: retention))
        }
    }
}

@Suite("Output storage contract")
struct OutputStorageContractTests {
    @Test(arguments: OutputSubject.available)
    func aCancelledJobsImagesAreDeletedForEveryReplica(subject: OutputSubject) async throws {
        let (store, replica) = try await subject.make()
        let (_, names) = OutputStore.newNames(3, .png)
        for name in names { try await store.save([0x89, 0x50, 0x4E, 0x47], named: name) }
        await store.delete(Array(names.prefix(2)) + ["../not-one-of-ours.png"])
        let (first, second) = (await replica.file(named: names[0]), await replica.file(named: names[1]))
        #expect(first == nil && second == nil)
        #expect(await replica.file(named: names[2]) != nil, "only the images named are deleted")
    }

    @Test(arguments: OutputSubject.available)
    func anImageIsKeptWholeUnderItsNameAndReadByAnotherReplica(subject: OutputSubject) async throws {
        let (store, replica) = try await subject.make()
        // Four megabytes of noise: more than an image at 1024x1024, and nothing to compress.
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<(4 << 20)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let name = OutputStore.newName(.png)
        try await store.save(bytes, named: name)
        let kept = try #require(await replica.file(named: name))
        #expect(try await kept.bytes() == bytes && kept.size == bytes.count && kept.kind == .png)
        #expect(bytes.starts(with: kept.head) && !kept.head.isEmpty, "the head is the image's first bytes")
        // Only the head is read before the answer is sent (the file store once read the whole image).
        #expect(kept.head.count <= StoredOutput.headBytes)
        #expect(kept.keptFor > .seconds(3500) && kept.keptFor <= .seconds(3600))
        // Named before it existed, and written again when its job runs again: the newest bytes.
        let (_, names) = OutputStore.newNames(2, .base64)
        try await store.save(Array("first".utf8), named: names[1])
        try await replica.save(Array("again".utf8), named: names[1])
        #expect(try await store.file(named: names[1])?.bytes() == Array("again".utf8))
        #expect(await store.file(named: names[0]) == nil, "named, never kept")
    }

    @Test(arguments: OutputSubject.available)
    func namesThatAreNotOursAreRefusedBeforeTheStorageIsAsked(subject: OutputSubject) async throws {
        let (store, _) = try await subject.make()
        for name in ["", "x.png", "../../etc/passwd", String(repeating: "a", count: 43) + ".exe", String(repeating: "a", count: 42) + "/.jpg"] {
            await #expect(throws: (any Error).self, "\(name)") { try await store.save([1], named: name) }
            #expect(await store.file(named: name) == nil, "\(name)")
        }
    }

    @Test(arguments: OutputSubject.available)
    func theSweepDeletesWhatIsOlderThanTheRetentionOnly(subject: OutputSubject) async throws {
        let (store, replica) = try await subject.make(retention: .seconds(60))
        let old = OutputStore.newName(.jpeg)
        try await store.save([1], named: old)
        // Swept by any replica, once: a minute and more later, the image is older than the retention.
        #expect(await replica.sweep(now: Date().addingTimeInterval(62)) == 1)
        #expect(await store.sweep(now: Date().addingTimeInterval(62)) == 0)
        #expect(await store.file(named: old) == nil)
        let fresh = OutputStore.newName(.jpeg)
        try await store.save([2], named: fresh)
        #expect(await replica.sweep(now: Date()) == 0)
        #expect(try await store.file(named: fresh)?.bytes() == [2])
    }

    /// Larger than its head: the route sends the rest a piece at a time, and curl gets every byte.
    @Test(arguments: OutputSubject.available)
    func aLargeImageIsServedWholeByItsRoute(subject: OutputSubject) async throws {
        let (store, _) = try await subject.make()
        var generator = SystemRandomNumberGenerator()
        let image = TestImages.png(width: 8, height: 8) + (0..<(3 << 20)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let name = OutputStore.newName(.png)
        try await store.save(image, named: name)
        var router = Router()
        OutputRoutes(store: store).register(on: &router)
        var configuration = HTTPServer.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        let server = try HTTPServer(configuration: configuration, responder: router)
        let port = try server.start().port
        let file = Scratch.path("download")
        let answer = try await Command.run(
            "curl", ["-sS", "-o", file.path, "-w", "%{http_code} %{content_type}", "http://127.0.0.1:\(port)/generations/\(name)"])
        #expect(answer.output == "200 image/png", "\(answer.errors)")
        #expect(Array(try Data(contentsOf: file)) == image)
        await server.shutdown()
    }
}
