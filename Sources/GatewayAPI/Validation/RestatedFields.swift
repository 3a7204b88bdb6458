import GenerationCore

/// A request from a dialect whose fields are not the catalog's (OpenAI's `n`, A1111's `cfg_scale`),
/// restated in a model's own wire names, so that the catalog's validation, defaults, ranges and
/// prices apply to it exactly as to the same request in the model's own dialect.
struct RestatedFields {
    private(set) var values: [FieldRole: JSONValue] = [:]
    /// The client's name for each role: problems are reported in the client's words.
    private(set) var names: [FieldRole: String] = [:]

    /// Sets a role from the client's field `name`; nil (absent) leaves the model's default, and a
    /// problem with it (`is required`) is still named as the client would name it.
    mutating func set(_ role: FieldRole, _ value: JSONValue?, from name: String) {
        names[role] = name
        guard let value, value != .null else { return }
        values[role] = value
    }

    /// The body in `model`'s wire names. A role the model has no field for is dropped (the model
    /// decides it: the output size of an image-to-image model is its input's).
    func body(for model: ModelSpec) -> [String: JSONValue] {
        var body: [String: JSONValue] = [:]
        for field in model.fields {
            if let value = values[field.role] { body[field.name] = value }
        }
        return body
    }

    /// `error` with each problem's field named as the client named it: `samples: must be at most 4`
    /// becomes `n: must be at most 4`.
    func renamed(_ error: GatewayError, for model: ModelSpec) -> GatewayError {
        switch error {
        case .invalidFields(let problems): .invalidFields(problems.map { rename($0, model) })
        case .invalidImage(let field, let reason): .invalidImage(field: names[.image] ?? field, reason: reason)
        default: error
        }
    }

    private func rename(_ problem: String, _ model: ModelSpec) -> String {
        guard let colon = problem.range(of: ": ") else { return problem }
        var seen: [String] = []
        for wireName in problem[..<colon.lowerBound].split(separator: ",").map({ String($0.trimmingSpaces()) }) {
            let clientName = model.fields.first { $0.name == wireName }.flatMap { names[$0.role] } ?? wireName
            if !seen.contains(clientName) { seen.append(clientName) }
        }
        return seen.joined(separator: ", ") + problem[colon.lowerBound...]
    }
}
