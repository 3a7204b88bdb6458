import Foundation
import GenerationCore

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
        guard let text = String(validating: body, as: UTF8.self) else { return nil }
        var fields: [String: JSONValue] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            }
            guard let name = parts.first ?? nil, !name.isEmpty else { return nil }
            guard let value = parts.count > 1 ? parts[1] : "" else { return nil }
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
