import CZlib

/// gzip (RFC 1952) of a whole body in one call, through the system's zlib.
enum Gzip {
    /// The compressed bytes; nil if zlib fails (it cannot allocate its state), and the body goes as it is.
    ///
    /// A large body's first `trialBytes` are compressed first, as a trial. Text with repeats (a JSON
    /// report) shrinks to a fraction of its size and gets zlib's full search; a body that does not
    /// shrink by half gets Huffman coding alone, which is all that shrinks it: base64 of images
    /// (most of an answer that carries them) comes out as small, a quarter smaller, about five
    /// times faster (8 MiB: 57 ms instead of 276 ms at level 6).
    static func compress(_ input: [UInt8], level: Int) -> [UInt8]? {
        compress(input, level: level, strategy: strategy(for: input, level: level))
    }

    enum Strategy {
        /// zlib's own: repeats found and Huffman-coded.
        case full
        case huffmanOnly

        var zlib: Int32 { self == .full ? Z_DEFAULT_STRATEGY : Z_HUFFMAN_ONLY }
    }

    static let trialBytes = 64 << 10

    static func strategy(for input: [UInt8], level: Int) -> Strategy {
        guard input.count > 2 * trialBytes, let trial = compress(Array(input.prefix(trialBytes)), level: level, strategy: .full) else {
            return .full
        }
        return trial.count * 2 > trialBytes ? .huffmanOnly : .full
    }

    static func compress(_ input: [UInt8], level: Int, strategy: Strategy) -> [UInt8]? {
        var stream = z_stream()
        guard czlib_deflate_init_gzip(&stream, Int32(level), strategy.zlib) == Z_OK else { return nil }
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
