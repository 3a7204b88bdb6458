/// A request body as it arrives.
///
/// A `Content-Length` body has its storage made at once and is read into straight from the socket
/// (`readInPlace`): one copy fewer than through the loop's buffer. The storage is not zeroed: every
/// byte is written by a read before it counts (`count`), and the pages of a body announced large
/// but never sent are never touched, so they cost no memory.
struct RequestBodyBuffer {
    private var bytes: [UInt8] = []
    /// Bytes received; `bytes` may hold space beyond them that no read has filled yet.
    private(set) var count = 0

    static let inPlaceReadStep = 256 * 1024

    init(expectedLength: Int?) {
        // Only the storage is made: its bytes are left as the allocator hands them out.
        if let expectedLength { bytes = Self.unfilled(expectedLength) }
    }

    private static func unfilled(_ length: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: length) { _, initialized in initialized = length }
    }

    /// Appends bytes that arrived through the loop's buffer (chunked bodies, or the start of a
    /// body that came with its head).
    mutating func append(_ part: UnsafeRawBufferPointer) {
        if count + part.count <= bytes.count {
            let start = count
            bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[start..<start + part.count]).copyMemory(from: part) }
        } else {
            bytes.removeLast(bytes.count - count)
            bytes.append(contentsOf: part)
        }
        count += part.count
    }

    /// Lets `read` fill up to `limit` bytes (at most one step) right after what arrived; `read`
    /// returns how many it filled, or nil if nothing could be read now.
    mutating func readInPlace<E: Error>(
        upTo limit: Int, _ read: (UnsafeMutableRawBufferPointer) throws(E) -> Int?
    ) throws(E) -> Int? {
        let step = min(limit, Self.inPlaceReadStep)
        // A body of announced length has its storage already; this is for any other.
        if bytes.count < count + step { bytes += Self.unfilled(count + step - bytes.count) }
        let start = count
        let filled = try bytes.withUnsafeMutableBytes { storage in
            Result { () throws(E) in try read(UnsafeMutableRawBufferPointer(rebasing: storage[start..<start + step])) }
        }.get()
        if let filled { count += filled }
        return filled
    }

    /// The bytes received, handed over; the buffer is empty afterwards.
    mutating func take() -> [UInt8] {
        if bytes.count > count { bytes.removeLast(bytes.count - count) }
        defer { self = RequestBodyBuffer(expectedLength: nil) }
        return bytes
    }
}
