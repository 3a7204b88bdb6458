import CZlib

/// gzip (RFC 1952) of a whole body in one call, through the system's zlib.
enum Gzip {
    /// The compressed bytes; nil if zlib fails (it cannot allocate its state), and the body goes as it is.
    static func compress(_ input: [UInt8], level: Int) -> [UInt8]? {
        var stream = z_stream()
        guard czlib_deflate_init_gzip(&stream, Int32(level)) == Z_OK else { return nil }
        defer { deflateEnd(&stream) }
        // deflateBound counts the gzip header and trailer too: one deflate call always finishes.
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var status = Z_OK
        let output = [UInt8](unsafeUninitializedCapacity: bound) { destination, written in
            input.withUnsafeBufferPointer { source in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = destination.baseAddress
                stream.avail_out = uInt(bound)
                status = deflate(&stream, Z_FINISH)
            }
            written = Int(stream.total_out)
        }
        return status == Z_STREAM_END ? output : nil
    }
}
