import Foundation
import GRDB
public import GenerationCore

/// The embedded ledger: one SQLite file in WAL mode. Writes are serialized by SQLite, which makes
/// each check-and-reserve atomic, and committed in groups (`SQLiteGroupCommit`).
///
/// Statements run on the calling thread where they can: a read, or a write that finds no other
/// write under way, takes tens of microseconds, while handing it to another thread and back costs
/// several times that in wake-ups. A WAL read never waits for a writer, and a write waits only for
/// the transaction before it, so the calling thread is held briefly either way.
public final class SQLiteLedger: Ledger {
    let pool: DatabasePool
    private let writer: SQLiteGroupCommit
    let recentKeys = RecentKeys()
    let clock: any WallClock

    /// Opens (creating if needed) the database at `path` and applies the migrations it lacks.
    public init(path: String, clock: any WallClock = SystemWallClock()) throws(LedgerError) {
        do {
            var configuration = Configuration()
            // Concurrent writers wait for each other rather than failing with SQLITE_BUSY; the
            // group commit keeps that wait off the callers' threads (`SQLiteGroupCommit`).
            configuration.busyMode = .timeout(TimeInterval(Self.busyTimeout.components.seconds))
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrate(pool)
        } catch let refusal as LedgerError {
            throw refusal
        } catch {
            throw .storage("\(error)")
        }
        // Without a connection of its own (it could not be opened), the commits checkpoint as SQLite does by default.
        let checkpointer = try? SQLiteCheckpointer(path: path)
        writer = SQLiteGroupCommit(pool: pool, busyTimeout: Self.busyTimeout, checkpointer: checkpointer)
        self.clock = clock
    }

    static let busyTimeout: Duration = .seconds(10)

    func now() -> Timestamp { clock.millisecondsNow }

    // MARK: Access

    /// Reads on this thread (GRDB's synchronous read). Every read goes this way, so no reader
    /// connection is ever held across a suspension (with a few held so, readers blocked here could
    /// wait on tasks that need this very thread). A read of `oneStatement`, which SQLite makes atomic
    /// by itself, skips the transaction whose `BEGIN` and `COMMIT` GRDB prepares anew each time.
    func read<T: Sendable>(oneStatement: Bool = false, _ body: @escaping @Sendable (Database) throws -> T) async throws(LedgerError) -> T {
        do {
            return try oneStatement ? readHere(unsafe: body) : readHere(body)
        } catch let error as LedgerError {
            throw error
        } catch {
            throw .storage("\(error)")
        }
    }

    private func readHere<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }

    private func readHere<T>(unsafe body: (Database) throws -> T) throws -> T {
        try pool.unsafeRead(body)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(LedgerError) -> T {
        do {
            return try await writer.write(body)
        } catch let error as LedgerError {
            throw error
        } catch {
            throw .storage("\(error)")
        }
    }
}
