public import GenerationCore

/// The fields of a request, each coerced and checked against the catalog.
public struct ValidatedFields: Sendable {
    public let model: ModelSpec
    /// Every field with a value: sent by the client or its default.
    public let values: [FieldRole: FieldValue]

    public func integer(_ role: FieldRole) -> Int64? {
        if case .integer(let value) = values[role] { return value }
        return nil
    }

    public func number(_ role: FieldRole) -> Double? { values[role]?.asDouble }

    public func string(_ role: FieldRole) -> String? {
        switch values[role] {
        case .string(let text): text
        case .ascii(let text): text.description
        default: nil
        }
    }

    public func boolean(_ role: FieldRole) -> Bool? {
        if case .boolean(let flag) = values[role] { return flag }
        return nil
    }
}

/// Every problem with a request's fields, in catalog order: `prompt: is required`.
public struct ValidationFailure: Error, Sendable {
    public let problems: [String]

    public var message: String { problems.joined(separator: "; ") }
}

/// Checks a request body against a model's fields. Unknown fields are ignored (clients send extras
/// and misspellings and still expect an image); every bad field is reported, not just the first.
public enum RequestValidator {
    public static func validate(_ body: [String: JSONValue], for model: ModelSpec) -> Result<ValidatedFields, ValidationFailure> {
        var values: [FieldRole: FieldValue] = [:]
        var problems: [String] = []
        for field in model.fields {
            let sent = ([field.name] + field.aliases).lazy.compactMap { body[$0] }.first
            switch sent.map({ FieldCoercion.coerce($0, to: field) }) {
            case .failure(let problem):
                problems.append("\(field.name): \(problem.message)")
            case .success(let value?):
                values[field.role] = value
            case .success(nil), nil:
                if let defaultValue = field.defaultValue {
                    values[field.role] = defaultValue
                } else if field.required {
                    problems.append("\(field.name): is required")
                }
            }
        }
        if case .string(let prompt)? = values[.prompt], prompt.trimmingSpaces().isEmpty, let field = model.field(.prompt) {
            problems.append("\(field.name): must not be empty")
        }
        if let sizes = model.sizes, case .integer(let width)? = values[.width], case .integer(let height)? = values[.height],
            !sizes.contains(ImageSize(width: Int(width), height: Int(height))),
            let widthField = model.field(.width), let heightField = model.field(.height)
        {
            problems.append(
                "\(widthField.name), \(heightField.name): \(width)x\(height) is not one of the sizes \(sizes.map(\.description).joined(separator: ", "))"
            )
        }
        guard problems.isEmpty else { return .failure(ValidationFailure(problems: problems)) }
        return .success(ValidatedFields(model: model, values: values))
    }
}
