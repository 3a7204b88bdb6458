import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import GenerationCore
import Glibc
#endif

/// Where the log's lines go: a buffer in memory that a thread of its own writes out, every
/// `interval`, whenever `flushSize` bytes are waiting, and at shutdown.
///
/// A line costs its caller a copy into the buffer under a short lock, never a system call: one line
/// per request written and flushed on its own cost the gateway about 40 % of its throughput. When
/// the output cannot keep up (a pipe nobody reads, a slow disk), lines beyond `capacity` are dropped
/// and counted (`sdgate_log_lines_dropped_total`): a request never waits for its log line.
package final class BufferedLogOutput: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    /// Signalled by the writer each time it has written everything it took.
    private let written = DispatchSemaphore(value: 0)
    private let fileDescriptor: Int32
    private let capacity: Int
    private let flushSize: Int
    private let interval: Duration
    /// Counted as they happen: while the output is blocked, the writer cannot report anything.
    private let dropped = Atomic<Int>(0)

    /// - Parameters:
    ///   - capacity: the most bytes waiting to be written; a line that does not fit is dropped.
    package init(
        fileDescriptor: Int32 = 1, capacity: Int = 1 << 20, flushSize: Int = 64 << 10,
        interval: Duration = .milliseconds(200)
    ) {
        self.fileDescriptor = fileDescriptor
        self.capacity = max(capacity, 4096)
        self.flushSize = min(flushSize, self.capacity)
        self.interval = interval
        let thread = Thread { [self] in writeUntilStopped() }
        thread.name = "sdgate-log"
        thread.start()
    }

    /// Appends one line (its newline included), or drops it when the buffer is full.
    func append(_ line: LogLine) {
        let crossed = state.withLock { state -> Bool in
            guard !state.stopping, state.pending.count + line.bytes.count <= capacity else {
                dropped.add(1, ordering: .relaxed)
                return false
            }
            let before = state.pending.count
            state.pending.append(contentsOf: line.bytes)
            return before < flushSize && state.pending.count >= flushSize
        }
        if crossed { wake.signal() }
    }

    /// Lines dropped since the start.
    package var droppedLines: Int { dropped.load(ordering: .relaxed) }

    /// Writes out what is waiting and stops the writer, waiting at most `timeout` for an output
    /// that does not take it (then what is left is lost). Lines appended after this are dropped.
    package func close(timeout: Duration = .seconds(5)) {
        let alreadyStopping = state.withLock { state in
            defer { state.stopping = true }
            return state.stopping
        }
        guard !alreadyStopping else { return }
        wake.signal()
        _ = written.wait(timeout: .now() + .nanoseconds(Int(clamping: timeout.wholeNanoseconds)))
    }

    private func writeUntilStopped() {
        let nanoseconds = Int(clamping: interval.wholeNanoseconds)
        while true {
            _ = wake.wait(timeout: .now() + .nanoseconds(nanoseconds))
            let (bytes, stopping) = state.withLock { state in
                defer { state.pending.removeAll(keepingCapacity: true) }
                return (state.pending, state.stopping)
            }
            write(bytes)
            if stopping {
                written.signal()
                return
            }
        }
    }

    /// Writes every byte, retrying after interruptions and partial writes; gives up on an error
    /// (a closed pipe): nothing else could be done with the lines.
    private func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count, let base = buffer.baseAddress {
                let count = Glibc.write(fileDescriptor, base + offset, buffer.count - offset)
                if count > 0 {
                    offset += count
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
