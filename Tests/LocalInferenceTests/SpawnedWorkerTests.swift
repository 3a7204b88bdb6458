import Testing

@testable import LocalInference

/// What a spawned worker says of where it listens is read as input: an address to connect to, or
/// a failed start.
@Suite("Spawned worker")
struct SpawnedWorkerTests {
    @Test func aWorkersAddressIsAHostAndAPortASocketCanHave() {
        #expect(SpawnedWorker.workerURL("127.0.0.1:7000") == "http://127.0.0.1:7000")
        #expect(SpawnedWorker.workerURL("[::1]:65535") == "http://[::1]:65535")
        // A port past 65535 passed, and the HTTP client's socket address trapped on it.
        for address in ["127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1", ":7000", "127.0.0.1:7000/x", "u@127.0.0.1:7000", ""] {
            #expect(SpawnedWorker.workerURL(address) == nil, "\(address)")
        }
    }
}
