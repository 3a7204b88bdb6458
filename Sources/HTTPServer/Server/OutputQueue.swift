#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Response bytes not yet taken by the socket, sent with one gathering write so a head and its body leave in
/// one call (with Nagle off, two sends would be two packets and a delayed ACK between them).
struct OutputQueue {
    private var buffers: [[UInt8]] = []
    /// Bytes of `buffers[0]` already sent.
    private var sentOfFirst = 0
    private(set) var pendingBytes = 0

    var isEmpty: Bool { buffers.isEmpty }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        buffers.append(bytes)
        pendingBytes += bytes.count
    }

    mutating func removeAll() {
        buffers.removeAll()
        sentOfFirst = 0
        pendingBytes = 0
    }

    enum FlushResult {
        case flushed
        case wouldBlock(progressed: Bool)
    }

    /// Writes until everything is sent or the socket would block.
    mutating func flush(to transport: any ConnectionTransport) throws(SystemError) -> FlushResult {
        var progressed = false
        while !buffers.isEmpty {
            let written = try writeOnce(transport)
            guard let written else { return .wouldBlock(progressed: progressed) }
            progressed = true
            consume(written)
        }
        return .flushed
    }

    private func writeOnce(_ transport: any ConnectionTransport) throws(SystemError) -> Int? {
        // A head, a body and a few chunks: more vectors per call would not save a system call.
        let count = min(buffers.count, 16)
        return try withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors throws(SystemError) -> Int? in
            try Self.withPinned(buffers, upTo: count, skipping: sentOfFirst, into: vectors, index: 0) { filled throws(SystemError) in
                switch try transport.send(UnsafeBufferPointer(rebasing: vectors[..<filled])) {
                case .done(let written): written
                case .wouldBlock: nil
                }
            }
        }
    }

    /// Fills `vectors` with pointers into `buffers[index..<count]`, keeping each buffer pinned while
    /// `body` runs (pointers from `withUnsafeBytes` are valid only inside the call).
    private static func withPinned<R>(
        _ buffers: [[UInt8]], upTo count: Int, skipping: Int, into vectors: UnsafeMutableBufferPointer<iovec>, index: Int,
        _ body: (Int) throws(SystemError) -> R
    ) throws(SystemError) -> R {
        guard index < count else { return try body(count) }
        return try buffers[index].withUnsafeBytes { bytes in
            Result { () throws(SystemError) -> R in
                let start = index == 0 ? skipping : 0
                vectors[index] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress! + start), iov_len: bytes.count - start)
                return try withPinned(buffers, upTo: count, skipping: skipping, into: vectors, index: index + 1, body)
            }
        }.get()
    }

    private mutating func consume(_ written: Int) {
        var remaining = written
        pendingBytes -= written
        while remaining > 0 {
            let available = buffers[0].count - sentOfFirst
            if remaining >= available {
                remaining -= available
                buffers.removeFirst()
                sentOfFirst = 0
            } else {
                sentOfFirst += remaining
                remaining = 0
            }
        }
    }
}
