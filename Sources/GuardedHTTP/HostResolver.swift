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
/// threads may be blocked in lookups at once, and only a few of them by the lookups of one member
/// (`owner`), so that a member's names whose servers never answer cannot take every place.
public final class HostResolver: Sendable {
    /// Whose request the lookups made in this task are for (an API key's id); nil: the gateway's own.
    @TaskLocal public static var owner: String?

    /// The system's resolver, one bound for every fetch of the gateway.
    public static let system = HostResolver()

    /// What a lookup came to.
    public enum Lookup: Sendable, Equatable {
        /// The host's addresses; empty when the name does not resolve.
        case addresses([String])
        /// The deadline came first (the lookup's thread goes on until its servers answer).
        case timedOut
        /// `maxBlocked` lookups are waiting on their servers already, or `maxBlockedPerOwner` of
        /// the owner's.
        case busy
    }

    /// The blocking lookup of a bare host name (no brackets).
    private let lookup: @Sendable (String) -> [String]
    private let maxBlocked: Int
    private let maxBlockedPerOwner: Int
    /// The lookups whose threads are blocked now, in all and by owner.
    private let blocked = Mutex<(total: Int, byOwner: [String: Int])>((0, [:]))

    /// - Parameters:
    ///   - lookup: resolves a name on the calling thread, which it may block.
    ///   - maxBlocked: how many lookups may wait on their servers at once.
    ///   - maxBlockedPerOwner: how many of them may be one owner's.
    public init(
        maxBlocked: Int = 64, maxBlockedPerOwner: Int = 8, lookup: @escaping @Sendable (String) -> [String] = HostResolver.getAddresses
    ) {
        self.lookup = lookup
        self.maxBlocked = maxBlocked
        self.maxBlockedPerOwner = maxBlockedPerOwner
    }

    /// `host`'s addresses: a numeric host's at once, a name's looked up on a thread of its own and
    /// waited for until `deadline`.
    public func addresses(of host: String, before deadline: ContinuousClock.Instant) async -> Lookup {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let numeric = Self.getAddresses(bare, numericOnly: true) { return .addresses(numeric) }
        let owner = Self.owner
        let taken = blocked.withLock { blocked in
            let owners = owner.map { blocked.byOwner[$0, default: 0] } ?? 0
            guard blocked.total < maxBlocked, owners < maxBlockedPerOwner else { return false }
            blocked.total += 1
            if let owner { blocked.byOwner[owner] = owners + 1 }
            return true
        }
        guard taken else { return .busy }
        return await withTaskGroup(of: Lookup.self) { group in
            group.addTask { await self.lookUp(bare, for: owner) }
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
    private func lookUp(_ host: String, for owner: String?) async -> Lookup {
        let answer = AnswerOnce()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                answer.wait(continuation)
                let thread = Thread {
                    let addresses = self.lookup(host)
                    self.giveBack(for: owner)
                    answer.give(.addresses(addresses))
                }
                thread.stackSize = 512 << 10
                thread.start()
            }
        } onCancel: {
            answer.give(.timedOut)
        }
    }

    private func giveBack(for owner: String?) {
        blocked.withLock { blocked in
            blocked.total -= 1
            if let owner, let count = blocked.byOwner[owner] { blocked.byOwner[owner] = count > 1 ? count - 1 : nil }
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
