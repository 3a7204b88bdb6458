/// Thrown to a streamed body's producer when the connection is gone.
public struct ConnectionClosedError: Error, Sendable {}

/// The state of a streamed answer body.
struct StreamedBody {
    let framing: ResponseFraming
    private var written = 0
    var waitingWriter: CheckedContinuation<Void, any Error>?

    init(framing: ResponseFraming) {
        self.framing = framing
    }

    /// Counts `count` more bytes; false if that exceeds the declared length.
    mutating func accept(_ count: Int) -> Bool {
        written += count
        if case .length(let length) = framing { return written <= length }
        return true
    }

    var isComplete: Bool {
        if case .length(let length) = framing { return written == length }
        return true
    }

    mutating func resumeWriter() {
        waitingWriter?.resume()
        waitingWriter = nil
    }
}

struct ConnectionBodyWriter: HTTPBodyWriter {
    let connection: Connection

    func write(_ bytes: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { continuation in
            connection.loop.execute { connection.streamWrite(bytes, then: continuation) }
        }
    }
}
