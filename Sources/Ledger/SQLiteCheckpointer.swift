import Dispatch
import GRDB
import GRDBSQLite
import Synchronization

/// Copies the ledger's write-ahead log back into its database file (a checkpoint) on a connection
/// and a thread of its own, so that no commit does it.
///
/// SQLite's own checkpoint runs inside the commit that crosses its mark, with two fsyncs, before
/// that commit's caller hears of it; the group commit runs on an event loop, so every request of
/// that loop waited for the disk. Here the writer connection only reports the log's length after
/// each commit (SQLite's WAL hook, which replaces its automatic checkpoint). A passive checkpoint,
/// which waits for no lock and holds up no writer, runs once 500 frames (pages) are new since the
/// last one began, and half a second after a commit when fewer come: at rest the database file soon
/// holds everything.
///
/// SQLite starts the log again from its beginning only when a write finds all of it copied. A write
/// committed while a checkpoint copies leaves a few frames uncopied, so a checkpoint goes round
/// again once (that round copies only those). Writes without a pause can keep the log from ever
/// being all copied: at `inlineMark` frames the commit checkpoints as SQLite's own mark would, and
/// by then nearly all of the log has been copied here, so that checkpoint is short.
final class SQLiteCheckpointer: Sendable {
    private struct State {
        /// The log's length when the last checkpoint began (0 after the log started again).
        var startedAt = 0
        /// A checkpoint is due `delay` after a commit.
        var timed = false
        var running = false
        /// A commit came while a checkpoint ran: what it wrote may be left uncopied.
        var missed = false
    }

    private let connection: DatabaseQueue
    private let state = Mutex(State())
    /// New frames of the log (pages) after which a checkpoint begins.
    private static let copyEvery = 500
    /// How long after a commit a checkpoint begins when fewer frames than `copyEvery` come.
    private static let delay = DispatchTimeInterval.milliseconds(500)
    /// The log's length (32 MB of 4 KiB pages) at which a commit checkpoints. Rarely reached: only
    /// when writes without a pause keep the log from being all copied at the start of one.
    static let inlineMark = 8_000
    /// Rounds of one checkpoint at most: the second copies what the first let through.
    private static let rounds = 2

    /// Opens a connection of its own to the database at `path` (in WAL mode already).
    init(path: String) throws {
        var configuration = Configuration()
        configuration.label = "sdgate.ledger.checkpoint"
        connection = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Takes over the checkpoints of the writer connection `db`.
    func watch(_ db: Database) {
        // Never freed (SQLite cannot release what it is handed): a few bytes for each ledger opened.
        // It holds this checkpointer weakly, so a ledger that is let go closes its connection.
        let context = Unmanaged.passRetained(Watcher(self)).toOpaque()
        sqlite3_wal_hook(
            db.sqliteConnection,
            { context, connection, _, frames in
                guard let context else { return SQLITE_OK }
                Unmanaged<Watcher>.fromOpaque(context).takeUnretainedValue().checkpointer?.committed(logFrames: Int(frames), connection)
                return SQLITE_OK
            }, context)
    }

    private final class Watcher: Sendable {
        weak let checkpointer: SQLiteCheckpointer?
        init(_ checkpointer: SQLiteCheckpointer) { self.checkpointer = checkpointer }
    }

    /// After each commit of the writer connection, on its thread: the log holds `logFrames`.
    private func committed(logFrames frames: Int, _ writer: OpaquePointer?) {
        if frames >= Self.inlineMark { sqlite3_wal_checkpoint(writer, nil) }
        let next = state.withLock { state in
            if frames < state.startedAt { state.startedAt = 0 }
            guard !state.running else {
                state.missed = true
                return Next.none
            }
            if frames - state.startedAt >= Self.copyEvery {
                state.startedAt = frames
                state.running = true
                return .now
            }
            guard !state.timed else { return .none }
            state.timed = true
            return .later
        }
        start(next)
    }

    private enum Next {
        case none, now, later
    }

    private func start(_ next: Next) {
        switch next {
        case .none:
            return
        case .later:
            DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + Self.delay) {
                let next = self.state.withLock { state in
                    state.timed = false
                    guard !state.running else { return Next.none }
                    state.running = true
                    return Next.now
                }
                self.start(next)
            }
        case .now:
            connection.asyncWriteWithoutTransaction { db in
                var seen = -1
                for _ in 0..<Self.rounds {
                    // Stops when a round finds no frame written since the last, and when it cannot
                    // copy them all: a reader still needs older pages, or another connection is
                    // checkpointing (busy). What is left waits for the next checkpoint.
                    guard let (frames, copied) = try? db.checkpoint(.passive), copied == frames, frames != seen else { break }
                    seen = frames
                }
                let next = self.state.withLock { state in
                    state.running = false
                    guard state.missed, !state.timed else { return Next.none }
                    state.missed = false
                    state.timed = true
                    return Next.later
                }
                self.start(next)
            }
        }
    }
}
