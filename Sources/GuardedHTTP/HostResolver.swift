import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Host names to numeric addresses, for the fetches that check an address before connecting to
/// it (image URLs, webhooks).
///
/// getaddrinfo blocks a thread for as long as the name's DNS servers take, which a member chooses
/// with the name: each lookup is waited for only until the fetch's deadline, and only so many
/// threads may be blocked in lookups at once.
public final class HostResolver: Sendable {
    /// The system's resolver, one bound for every fetch of the gateway.
    public static let system = HostResolver()

    /// What a lookup came to.
    public enum Lookup: Sendable, Equatable {
        /// The host's addresses; empty when the name does not resolve.
        case addresses([String])
        /// The deadline came first (the lookup's thread goes on until its servers answer).
        case timedOut
        /// `maxBlocked` lookups are waiting on their servers already.
        case busy
    }

    /// The blocking lookup of a bare host name (no brackets).
    private let lookup: @Sendable (String) -> [String]
    private let maxBlocked: Int
    private let blocked = Atomic<Int>(0)

    /// - Parameters:
    ///   - lookup: resolves a name on the calling thread, which it may block.
    ///   - maxBlocked: how many lookups may wait on their servers at once.
    public init(maxBlocked: Int = 64, lookup: @escaping @Sendable (String) -> [String] = HostResolver.getAddresses) {
        self.lookup = lookup
        self.maxBlocked = maxBlocked
    }

    /// `host`'s addresses: a numeric host's at once, a name's looked up on a thread of its own and
    /// waited for until `deadline`.
    public func addresses(of host: String, before deadline: ContinuousClock.Instant) async -> Lookup {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let numeric = Self.getAddresses(bare, numericOnly: true) { return .addresses(numeric) }
        guard blocked.wrappingAdd(1, ordering: .relaxed).newValue <= maxBlocked else {
            blocked.wrappingSubtract(1, ordering: .relaxed)
            return .busy
        }
        return await withTaskGroup(of: Lookup.self) { group in
            group.addTask { await self.lookUp(bare) }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: .continuous)
                return .timedOut
            }
            let first = await group.next() ?? .timedOut
            group.cancelAll()
            return first
        }
    }

    /// `lookup` on a thread of its own: one of Dispatch's pool blocked here would hold back the
    /// pool's other work, which on Linux waits seconds for another thread. A cancel answers
    /// `.timedOut` at once and leaves the thread to finish alone.
    private func lookUp(_ host: String) async -> Lookup {
        let answer = AnswerOnce()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                answer.wait(continuation)
                let thread = Thread {
                    let addresses = self.lookup(host)
                    self.blocked.wrappingSubtract(1, ordering: .relaxed)
                    answer.give(.addresses(addresses))
                }
                thread.stackSize = 512 << 10
                thread.start()
            }
        } onCancel: {
            answer.give(.timedOut)
        }
    }

    /// The system's resolver, as numeric address strings.
    public static func getAddresses(_ host: String) -> [String] {
        getAddresses(host, numericOnly: false) ?? []
    }

    /// getaddrinfo's addresses for `host`, written as numbers; nil when it found none. With
    /// `numericOnly`, only a numeric host is read (in every form getaddrinfo takes), without a
    /// lookup: a name is nil.
    private static func getAddresses(_ host: String, numericOnly: Bool) -> [String]? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        if numericOnly { hints.ai_flags = AI_NUMERICHOST }
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        for entry in sequence(first: first, next: { $0.pointee.ai_next }) {
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(entry.pointee.ai_addr, entry.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                addresses.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        return addresses
    }
}

/// A lookup's answer, given once: by the lookup or by a cancel, whichever comes first, even
/// before the continuation is there to take it.
private final class AnswerOnce: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<HostResolver.Lookup, Never>)
        case given(HostResolver.Lookup)
        case done
    }

    private let state = Mutex(State.empty)

    func wait(_ continuation: CheckedContinuation<HostResolver.Lookup, Never>) {
        let given: HostResolver.Lookup? = state.withLock { state in
            guard case .given(let lookup) = state else {
                state = .waiting(continuation)
                return nil
            }
            state = .done
            return lookup
        }
        if let given { continuation.resume(returning: given) }
    }

    func give(_ lookup: HostResolver.Lookup) {
        let waiting: CheckedContinuation<HostResolver.Lookup, Never>? = state.withLock { state in
            switch state {
            case .empty:
                state = .given(lookup)
                return nil
            case .waiting(let continuation):
                state = .done
                return continuation
            case .given, .done:
                return nil
            }
        }
        waiting?.resume(returning: lookup)
    }
}
