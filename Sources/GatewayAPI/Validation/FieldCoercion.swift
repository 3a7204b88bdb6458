import GenerationCore

/// Turns what a client sent into what a field wants, as the vendors' clients send it: numeric strings
/// are numbers, booleans come in several spellings, enums match case-insensitively. Every refusal is
/// a short phrase that completes "<field>: ...".
enum FieldCoercion {
    /// The coerced value; nil for JSON null (the field counts as absent).
    static func coerce(_ sent: JSONValue, to field: FieldSpec) -> Result<FieldValue?, Problem> {
        if sent == .null { return .success(nil) }
        var value = sent
        if case .ascii(let text) = sent {
            // An image's text stays the request's bytes; any other field reads it as a string.
            if field.type == .image { return .success(.ascii(text)) }
            value = .string(text.description)
        }
        let coerced: Result<FieldValue, Problem> =
            switch field.type {
            case .string: text(value)
            case .image: string(value)
            case .integer: integer(value)
            case .number: number(value)
            case .boolean: boolean(value)
            case .seed: seed(value)
            case .enumeration: enumeration(value, field)
            }
        return coerced.flatMap { checked($0, against: field) }.map { $0 }
    }

    struct Problem: Error {
        let message: String
    }

    /// The most characters a text field (a prompt, a negative prompt) may hold: far past what a
    /// model reads, and an answer may repeat a prompt once per image (A1111's `all_prompts`,
    /// `infotexts`), so a 16 MB prompt became a 319 MB answer.
    static let maxTextLength = 10_000

    private static func text(_ value: JSONValue) -> Result<FieldValue, Problem> {
        string(value).flatMap { coerced in
            guard case .string(let text) = coerced else { return .success(coerced) }
            let length = text.unicodeScalars.count
            guard length <= maxTextLength else {
                return .failure(Problem(message: "must be at most \(maxTextLength) characters, got \(length)"))
            }
            return .success(coerced)
        }
    }

    private static func string(_ value: JSONValue) -> Result<FieldValue, Problem> {
        guard case .string(let text) = value else { return .failure(Problem(message: "must be text, got \(value.brief)")) }
        return .success(.string(text))
    }

    private static func integer(_ value: JSONValue) -> Result<FieldValue, Problem> {
        switch value {
        case .integer(let number):
            return .success(.integer(number))
        case .number(let number) where number == number.rounded() && abs(number) < 9.2e18:
            return .success(.integer(Int64(number)))
        case .string(let text):
            let trimmed = text.trimmingSpaces()
            if let number = Int64(trimmed) { return .success(.integer(number)) }
            if let number = decimal(trimmed), number == number.rounded(), abs(number) < 9.2e18 {
                return .success(.integer(Int64(number)))
            }
            return .failure(Problem(message: "must be a whole number, got \(value.brief)"))
        default:
            return .failure(Problem(message: "must be a whole number, got \(value.brief)"))
        }
    }

    private static func number(_ value: JSONValue) -> Result<FieldValue, Problem> {
        switch value {
        case .integer(let number): return .success(.number(Double(number)))
        case .number(let number): return .success(.number(number))
        case .string(let text):
            if let number = decimal(text.trimmingSpaces()) { return .success(.number(number)) }
            return .failure(Problem(message: "must be a number, got \(value.brief)"))
        default:
            return .failure(Problem(message: "must be a number, got \(value.brief)"))
        }
    }

    /// A number written in decimal, as JSON writes one (`12`, `-0.5`, `1e3`). `Double` alone would
    /// also read hexadecimal (`0x19`), `nan` and `inf`: not numbers a client meant.
    private static func decimal(_ text: Substring) -> Double? {
        guard text.utf8.contains(where: { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || "+-.eE".utf8.contains($0) }),
            let number = Double(text), number.isFinite
        else { return nil }
        return number
    }

    /// A flag outside the catalog's fields (ModelsLab's `safety_checker`), read as booleans are;
    /// nil when absent, null or not a flag.
    static func flag(_ value: JSONValue?) -> Bool? {
        guard let value, case .success(.boolean(let flag)) = boolean(value) else { return nil }
        return flag
    }

    /// true/false, "true"/"false", "yes"/"no", 1/0.
    private static func boolean(_ value: JSONValue) -> Result<FieldValue, Problem> {
        switch value {
        case .bool(let flag): return .success(.boolean(flag))
        case .integer(1): return .success(.boolean(true))
        case .integer(0): return .success(.boolean(false))
        case .string(let text):
            switch text.trimmingSpaces().lowercased() {
            case "true", "yes": return .success(.boolean(true))
            case "false", "no": return .success(.boolean(false))
            default: break
            }
        default: break
        }
        return .failure(Problem(message: "must be true or false, got \(value.brief)"))
    }

    /// -1 (pick one) or a whole number from 0 up: seeds are 64-bit (Segmind's examples pass 98877465625).
    private static func seed(_ value: JSONValue) -> Result<FieldValue, Problem> {
        integer(value).flatMap { coerced in
            guard case .integer(let number) = coerced, number >= -1 else {
                return .failure(Problem(message: "must be -1 (random) or a whole number from 0, got \(value.brief)"))
            }
            return .success(coerced)
        }
    }

    private static func enumeration(_ value: JSONValue, _ field: FieldSpec) -> Result<FieldValue, Problem> {
        guard case .string(let text) = value else { return .failure(Problem(message: "must be text, got \(value.brief)")) }
        // The catalog's spelling goes on, whatever case the client used.
        if let canonical = field.allowed?.first(where: { matches($0, .string(text)) }) { return .success(canonical) }
        return .failure(Problem(message: "must be one of \(allowedList(field)), got \(value.brief)"))
    }

    private static func checked(_ value: FieldValue, against field: FieldSpec) -> Result<FieldValue, Problem> {
        if let number = value.asDouble, field.type != .seed {
            if let minimum = field.minimum, let maximum = field.maximum, !(minimum...maximum).contains(number) {
                return .failure(Problem(message: "must be between \(render(minimum)) and \(render(maximum)), got \(value)"))
            }
            if let minimum = field.minimum, number < minimum {
                return .failure(Problem(message: "must be at least \(render(minimum)), got \(value)"))
            }
            if let maximum = field.maximum, number > maximum { return .failure(Problem(message: "must be at most \(render(maximum)), got \(value)")) }
        }
        if case .integer(let number) = value, let multiple = field.multiple, number % multiple != 0 {
            return .failure(Problem(message: "must be divisible by \(multiple), got \(value)"))
        }
        if field.type == .integer, let allowed = field.allowed, !allowed.contains(where: { matches($0, value) }) {
            return .failure(Problem(message: "must be one of \(allowedList(field)), got \(value)"))
        }
        return .success(value)
    }

    /// Whether `value` is the allowed value `allowed`: text case-insensitively, numbers by value.
    static func matches(_ allowed: FieldValue, _ value: FieldValue) -> Bool {
        switch (allowed, value) {
        case (.string(let a), .string(let b)): a.lowercased() == b.lowercased()
        default: allowed.asDouble != nil && allowed.asDouble == value.asDouble
        }
    }

    private static func allowedList(_ field: FieldSpec) -> String {
        (field.allowed ?? []).map(\.description).joined(separator: ", ")
    }

    private static func render(_ number: Double) -> String { FieldValue.number(number).description }
}

extension StringProtocol {
    /// Drops white space at both ends without copying; shared with the application's configuration.
    package func trimmingSpaces() -> Substring {
        let text = Substring(self)
        guard let first = text.firstIndex(where: { !$0.isWhitespace }), let last = text.lastIndex(where: { !$0.isWhitespace }) else {
            return text[text.endIndex...]
        }
        return text[first...last]
    }
}
