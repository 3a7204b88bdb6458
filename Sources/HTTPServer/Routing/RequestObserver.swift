import Synchronization

/// What a `Router` tells of every request it answers, refused at its head or answered by a
/// handler: for access logs and metrics. `route` is the pattern matched (`unmatched` for none),
/// never the raw path, which can carry ids; nothing of headers or bodies, where secrets travel.
public protocol RequestObserver: Sendable {
    func answered(_ method: HTTPMethod, route: String, status: HTTPStatus, duration: Duration, requestID: String)
}

/// Request ids: 16 hex digits, unique in this process and unlikely to meet another process's.
/// Each is a counter spread over 64 bits (multiplying by an odd constant is a bijection) from a
/// random start: no system call per request, as asking the kernel for random bytes would be.
enum RequestID {
    private static let start = UInt64.random(in: .min ... .max)
    private static let counter = Atomic<UInt64>(0)

    static func make() -> String {
        let value = start &+ counter.add(1, ordering: .relaxed).oldValue &* 0x9E37_79B9_7F4A_7C15
        return String(unsafeUninitializedCapacity: 16) { digits in
            for index in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: value >> (60 - 4 * index)) & 0xF
                digits[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 16
        }
    }
}
