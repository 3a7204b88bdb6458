#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's limit on open descriptors, and how many client connections fit in it.
///
/// Clients must never take the last descriptors. At the limit every other `open` and `socket` of
/// the process fails too, and on Linux one of them ends it: libdispatch, which runs Swift's
/// concurrency, checks once a second whether its worker threads are stalled by opening their
/// `/proc` files, and stops the process when that fails while work waits.
///
/// So client connections get a quarter of the descriptors. Each may need a second one while it is
/// answered (an upstream connection, an image download, an output file), and the other half stays
/// for the process's own: the ledger, the connection pools, the workers' pipes, the runtime's.
public enum DescriptorLimit {
    /// The soft limit on open descriptors now; nil when there is none.
    public static var current: Int? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: limit.rlim_cur)
    }

    /// Raises the soft limit to the hard one, as far as the kernel allows. The soft limit is a
    /// default for programs that use `select(2)`, which cannot watch descriptors past 1024; a server
    /// on epoll has no reason to stop there while the administrator's hard limit allows more.
    public static func raiseToHardLimit() {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        // Refused when the hard limit is past the kernel's nr_open: the soft limit then stays.
        _ = setrlimit(resource, &limit)
    }

    /// The most client connections a process allowed `limit` descriptors may hold open.
    public static func connections(fitting limit: Int) -> Int {
        max(1, limit / 4)
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif
}
