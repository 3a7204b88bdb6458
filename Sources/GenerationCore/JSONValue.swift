/// A JSON value as a client sent it, before it is coerced to what a field wants.
public enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    /// A long string of ASCII, kept as the request's own bytes (`JSONObjectReader`): in practice an
    /// image's base64. Any field but an image reads it as a `string`.
    case ascii(ASCIIText)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Order matters: JSON true/false only decode as Bool, and an integer literal must stay exact
        // (seeds go past 2^53) rather than become a Double.
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// A short rendering for error messages: strings quoted and cut, containers by kind.
    package var brief: String {
        switch self {
        case .null: "null"
        case .bool(let value): String(value)
        case .integer(let value): String(value)
        case .number(let value): String(value)
        case .string(let text): "\"\(text.brief)\""
        case .ascii(let text): "\"\(String(decoding: text.bytes.prefix(40), as: UTF8.self))…\""
        case .array: "a list"
        case .object: "an object"
        }
    }
}

extension StringProtocol {
    /// A client's text as an error message quotes it: at most 40 characters, and "…" where it was
    /// cut, so that no refusal is larger than a few lines, whatever it was sent.
    package var brief: String { dropFirst(40).isEmpty ? String(self) : "\(prefix(40))…" }
}

extension JSONValue: Encodable {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .ascii(let value): try container.encode(value.description)
        case .array(let values): try container.encode(values)
        case .object(let values): try container.encode(values)
        }
    }
}
