/// A request body as it arrives.
///
/// A `Content-Length` body has its capacity reserved at once and is read into straight from the
/// socket (`readInPlace`): one copy fewer than through the loop's buffer. Its storage is zeroed
/// only a step ahead of what arrived, so a client that announces a large body and sends little
/// costs little memory.
struct RequestBodyBuffer {
    private var bytes: [UInt8] = []
    /// Bytes received; `bytes` may hold zeroed space beyond them while a read is under way.
    private(set) var count = 0

    static let inPlaceReadStep = 256 * 1024
    /// What a step is zeroed from: appending a slice is one copy, while appending
    /// `repeatElement(0, ...)` goes byte by byte.
    private static let zeros = [UInt8](repeating: 0, count: inPlaceReadStep)

    init(expectedLength: Int?) {
        if let expectedLength { bytes.reserveCapacity(expectedLength) }
    }

    /// Appends bytes that arrived through the loop's buffer (chunked bodies, or the start of a
    /// body that came with its head).
    mutating func append(_ part: UnsafeRawBufferPointer) {
        if bytes.count > count { bytes.removeLast(bytes.count - count) }
        bytes.append(contentsOf: part)
        count = bytes.count
    }

    /// Lets `read` fill up to `limit` bytes (at most one step) right after what arrived; `read`
    /// returns how many it filled, or nil if nothing could be read now.
    mutating func readInPlace<E: Error>(
        upTo limit: Int, _ read: (UnsafeMutableRawBufferPointer) throws(E) -> Int?
    ) throws(E) -> Int? {
        let step = min(limit, Self.inPlaceReadStep)
        // Never beyond `limit`: at the end of the body the storage ends exactly at its length.
        if bytes.count < count + step { bytes += Self.zeros[0..<(count + step - bytes.count)] }
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
