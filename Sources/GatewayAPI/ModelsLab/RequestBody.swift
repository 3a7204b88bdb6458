import Foundation
import GenerationCore
import HTTPServer

/// A v3 request body as fields: JSON (an object), or `application/x-www-form-urlencoded` (every
/// value text; the validator coerces numbers and yes/no as it does for JSON strings).
enum RequestBody {
    static func fields(_ body: [UInt8], contentType: String?) -> [String: JSONValue]? {
        let type = contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        if type == "application/x-www-form-urlencoded" { return form(body) }
        return try? JSONObjectReader.decode(body)
    }

    static func form(_ body: [UInt8]) -> [String: JSONValue]? {
        // As many fields as a JSON body may hold values: each pair costs far more than its bytes.
        guard body.lazy.filter({ $0 == UInt8(ascii: "&") }).count < JSONObjectReader.maxValues else { return nil }
        var fields: [String: JSONValue] = [:]
        for pair in body.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = PercentDecoding.decode(parts[0], plusIsSpace: true), !name.isEmpty,
                let value = parts.count > 1 ? PercentDecoding.decode(parts[1], plusIsSpace: true) : ""
            else { return nil }
            fields[name] = .string(value)
        }
        return fields
    }
}

extension JSONValue {
    /// Text, or a number written as text (`track_id` may be either).
    var text: String? {
        switch self {
        case .string(let text): text
        case .ascii(let text): text.description
        case .integer(let value): String(value)
        case .number(let value): String(value)
        default: nil
        }
    }
}
