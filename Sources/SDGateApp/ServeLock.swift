import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One `sdgate serve` per SQLite ledger. Each gateway keeps its own rate limiter (only PostgreSQL's
/// is shared by replicas), so two on one file would give every key twice its limit. The gateway
/// holds an exclusive advisory lock on `<ledger>.lock` for as long as it lives; the kernel lets
/// it go when the process ends, however it ends, so a crash leaves nothing to clean up. The other
/// commands take no lock: they work beside the gateway.
package final class ServeLock: Sendable {
    private let descriptor: Int32
    package let path: String

    /// Takes the lock of the ledger at `ledgerPath`, making its folder if need be (the ledger goes
    /// there next); throws at once if another process holds it.
    package init(ledgerPath: String) throws(ServeLockError) {
        let path = ledgerPath + ".lock"
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw ServeLockError(description: "cannot make the folder of \(path): \(error)")
        }
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ServeLockError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(descriptor)
            guard code == EWOULDBLOCK else { throw ServeLockError(description: "cannot lock \(path): \(String(cString: strerror(code)))") }
            throw ServeLockError(
                description: "another sdgate serve uses the ledger at \(ledgerPath) (it holds \(path)): one gateway per SQLite ledger; "
                    + "stop it first, or share a PostgreSQL ledger between replicas")
        }
        self.descriptor = descriptor
        self.path = path
    }

    deinit {
        close(descriptor)
    }
}

package struct ServeLockError: Error, CustomStringConvertible {
    package let description: String
}
