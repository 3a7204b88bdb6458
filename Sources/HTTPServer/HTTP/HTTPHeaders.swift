/// Header fields in the order they arrived, every occurrence kept (RFC 9110 §5.3).
///
/// Names are compared case-insensitively; they are stored as received. Folding repeated fields into
/// one value is left to the caller, because for some fields (`Content-Length`, `Host`) a repeat is
/// itself the thing to detect.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    public typealias Element = (name: String, value: String)

    private var fields: [Element]

    public init() { fields = [] }

    public init(_ fields: [Element]) { self.fields = fields }

    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { (name: $0.0, value: $0.1) }
    }

    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[Element]> { fields.makeIterator() }

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? {
        for field in fields where field.name.equalsASCIICaseInsensitive(name) { return field.value }
        return nil
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.equalsASCIICaseInsensitive(name) }.map(\.value)
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// Whether a comma-separated list field (`Connection`, `Transfer-Encoding`) holds `token`.
    public func containsToken(_ token: String, in name: String) -> Bool {
        for field in fields where field.name.equalsASCIICaseInsensitive(name) {
            var rest = Substring(field.value)
            while !rest.isEmpty {
                let comma = rest.utf8.firstIndex(of: UInt8(ascii: ",")) ?? rest.endIndex
                if rest[..<comma].trimmingOWS().equalsASCIICaseInsensitive(token) { return true }
                rest = comma == rest.endIndex ? "" : rest[rest.utf8.index(after: comma)...]
            }
        }
        return false
    }

    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    /// Replaces every occurrence of `name` with one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        fields.append((name, value))
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { $0.name.equalsASCIICaseInsensitive(name) }
    }

    public var description: String { fields.map { "\($0.name): \($0.value)" }.joined(separator: "\n") }
}

extension StringProtocol {
    /// ASCII case-insensitive equality, without allocating lowercased copies.
    func equalsASCIICaseInsensitive(_ other: some StringProtocol) -> Bool {
        let fast = utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b in Self.equalsASCIICaseInsensitive(a, b) }
        }
        if let result = fast ?? nil { return result }
        return Self.equalsASCIICaseInsensitive(Array(utf8)[...], Array(other.utf8)[...])
    }

    private static func equalsASCIICaseInsensitive(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            // Equal ignoring case only if both are the same letter.
            guard x | 0x20 == y | 0x20, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(x | 0x20) else { return false }
        }
        return true
    }

    /// Drops optional white space (SP and HTAB, RFC 9110 §5.6.3) at both ends.
    func trimmingOWS() -> Substring {
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let text = Substring(self)
        guard let first = text.firstIndex(where: { !isOWS($0) }), let last = text.lastIndex(where: { !isOWS($0) }) else {
            return text[text.endIndex...]
        }
        return text[first...last]
    }
}
