import Foundation
import GenerationCore
import Yams

/// A problem in the catalog file, naming where: `models.yaml:23: sdxl-img2img: scheduler: ...`.
public struct CatalogError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(description: String) {
        self.description = description
    }
}

extension ModelCatalog {
    /// Loads and checks a catalog file; every problem found is reported at once.
    public static func load(file: String) throws(CatalogError) -> ModelCatalog {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw CatalogError(description: "\(file): cannot be read")
        }
        return try load(yaml: text, fileName: file)
    }

    public static func load(yaml: String, fileName: String) throws(CatalogError) -> ModelCatalog {
        var reader = CatalogReader(fileName: fileName)
        let catalog = reader.read(yaml)
        guard reader.problems.isEmpty else { throw CatalogError(description: reader.problems.joined(separator: "\n")) }
        return catalog
    }
}

/// Walks the YAML tree, collecting models and problems. Each problem names the line, the model and
/// the field it concerns.
struct CatalogReader {
    let fileName: String
    var problems: [String] = []

    init(fileName: String) {
        self.fileName = fileName
    }

    /// The models, the ModelsLab endpoints by name (`img2img`, `text2img`), and the other dialects' model names.
    mutating func read(_ yaml: String) -> ModelCatalog {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            problems.append("\(fileName): \(error)")
            return ModelCatalog(models: [])
        }
        guard let root, let top = mapping(root, "the top level") else { return ModelCatalog(models: []) }
        checkKeys(top, allowed: ["models", "modelslab", "openai", "a1111"], at: root, context: "")
        guard let modelsNode = top["models"], let models = mapping(modelsNode, "models") else {
            problems.append("\(fileName):\(root.mark?.line ?? 1): no 'models' mapping")
            return ModelCatalog(models: [])
        }
        let specs = models.compactMap { key, value -> ModelSpec? in
            guard let slug = key.string, !slug.isEmpty else {
                problem(key, "", "model names must be plain text")
                return nil
            }
            return model(slug, value)
        }
        var endpoints: [String: ModelSpec] = [:]
        var v6 = ModelNames()
        if let node = top["modelslab"], let entries = mapping(node, "modelslab") {
            checkKeys(entries, allowed: ["img2img", "text2img", "v6"], at: node, context: "modelslab")
            for (key, value) in entries {
                guard let name = key.string, ["img2img", "text2img"].contains(name) else { continue }
                endpoints[name] = modelsLabEndpoint(name, value, models: specs)
            }
            if let v6Node = entries["v6"] { v6 = modelsLabV6(v6Node, models: specs) }
        }
        return ModelCatalog(
            models: specs, modelsLab: endpoints, modelsLabV6: v6, openAI: top["openai"].map { openAI($0, models: specs) } ?? OpenAIModels(),
            a1111: top["a1111"].map { a1111($0, models: specs) } ?? ModelNames())
    }

    /// A ModelsLab v3 endpoint: it runs as one of the models (its family, backend route and
    /// price), with v3's own fields.
    private mutating func modelsLabEndpoint(_ name: String, _ node: Node, models: [ModelSpec]) -> ModelSpec? {
        let context = "modelslab: \(name)"
        guard let entries = mapping(node, context) else { return nil }
        checkKeys(entries, allowed: ["runs_as", "fields"], at: node, context: context)
        let task: GenerationTask = name == "img2img" ? .imageToImage : .textToImage
        guard let runsAs = entries["runs_as"]?.string, let base = models.first(where: { $0.slug == runsAs }) else {
            problem(node, context, "runs_as: expected one of the models above")
            return nil
        }
        guard base.task == task else {
            problem(node, context, "runs_as: \(runsAs) is \(base.task.rawValue), but \(name) needs \(task.rawValue)")
            return nil
        }
        guard let fieldsNode = entries["fields"], let fieldEntries = mapping(fieldsNode, "\(context): fields") else {
            problem(node, context, "fields: missing")
            return nil
        }
        let fields = fieldEntries.compactMap { key, value in key.string.flatMap { field($0, value, slug: context) } }
        checkRoles(fields, task: task, sizes: nil, at: fieldsNode, slug: context)
        return ModelSpec(
            slug: runsAs, task: task, family: base.family, price: base.price, sizes: nil, input: base.input, fields: fields,
            pricedSteps: base.pricedSteps)
    }

    // MARK: Models

    private mutating func model(_ slug: String, _ node: Node) -> ModelSpec? {
        guard let entries = mapping(node, slug) else { return nil }
        checkKeys(entries, allowed: ["task", "family", "price", "sizes", "input", "fields"], at: node, context: slug)
        let task = enumValue(entries["task"], GenerationTask.self, at: node, context: "\(slug): task")
        let family = enumValue(entries["family"], ModelFamily.self, at: node, context: "\(slug): family")
        let price = priceRule(entries["price"], at: node, slug: slug)
        let sizes = entries["sizes"].flatMap { sizeList($0, context: "\(slug): sizes") }
        let input = entries["input"].flatMap { inputRule($0, slug: slug) } ?? .standard
        guard let fieldsNode = entries["fields"], let fieldEntries = mapping(fieldsNode, "\(slug): fields") else {
            problem(node, slug, "fields: missing")
            return nil
        }
        var fields: [FieldSpec] = []
        for (key, value) in fieldEntries {
            guard let name = key.string else { continue }
            if let field = field(name, value, slug: slug) { fields.append(field) }
        }
        checkRoles(fields, task: task, sizes: sizes, at: fieldsNode, slug: slug)
        guard let task, let family, let price, problems.isEmpty else { return nil }
        return ModelSpec(slug: slug, task: task, family: family, price: price, sizes: sizes, input: input, fields: fields)
    }

    private mutating func priceRule(_ node: Node?, at parent: Node, slug: String) -> PriceRule? {
        guard let node else {
            problem(parent, slug, "price: missing")
            return nil
        }
        guard let entries = mapping(node, "\(slug): price") else { return nil }
        checkKeys(entries, allowed: ["credits_per_image"], at: node, context: "\(slug): price")
        guard let text = entries["credits_per_image"]?.string, let credits = Credits(decimal: text), credits > .zero else {
            problem(node, slug, "price: credits_per_image must be a positive amount with at most six decimals")
            return nil
        }
        return PriceRule(perImage: credits)
    }

    mutating func sizeList(_ node: Node, context: String) -> [ImageSize]? {
        guard case .sequence(let items) = node else {
            problem(node, context, "expected a list of sizes such as [1024x1024, 1152x896]")
            return nil
        }
        let sizes = items.compactMap { item -> ImageSize? in
            guard let size = item.string.flatMap(ImageSize.init) else {
                problem(item, context, "'\(item.string ?? "?")' is not a size such as 1024x768")
                return nil
            }
            return size
        }
        return sizes.count == items.count ? sizes : nil
    }

    private mutating func inputRule(_ node: Node, slug: String) -> InputRule? {
        guard let entries = mapping(node, "\(slug): input") else { return nil }
        checkKeys(entries, allowed: ["multiple", "max_size"], at: node, context: "\(slug): input")
        let multiple = entries["multiple"].map { $0.string.flatMap(Int.init) } ?? InputRule.standard.multiple
        let maxSize = entries["max_size"].map { $0.string.flatMap(ImageSize.init) } ?? InputRule.standard.maxSize
        guard let multiple, multiple > 0, let maxSize else {
            problem(node, slug, "input: multiple must be a positive whole number and max_size a size such as 2048x2048")
            return nil
        }
        return InputRule(multiple: multiple, maxSize: maxSize)
    }

    // MARK: Fields

    private mutating func field(_ name: String, _ node: Node, slug: String) -> FieldSpec? {
        let context = "\(slug): \(name)"
        guard let entries = mapping(node, context) else { return nil }
        checkKeys(
            entries, allowed: ["role", "type", "required", "default", "min", "max", "multiple", "values", "aliases"], at: node, context: context)
        let role: FieldRole? =
            entries["role"] == nil
            ? FieldRole(rawValue: name)
            : enumValue(entries["role"], FieldRole.self, at: node, context: "\(context): role")
        if role == nil && entries["role"] == nil {
            problem(node, context, "'\(name)' is not a role: give it one of \(FieldRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let role, let type = enumValue(entries["type"], FieldType.self, at: node, context: "\(context): type") else { return nil }
        let required = entries["required"]?.bool ?? false
        let minimum = number(entries["min"], context: "\(context): min")
        let maximum = number(entries["max"], context: "\(context): max")
        // Validation checks a value against min...max: a range that ends before it starts would trap
        // on the first request that sends the field.
        if let minimum, let maximum, minimum > maximum { problem(node, context, "min \(minimum) is above max \(maximum)") }
        let multiple = number(entries["multiple"], context: "\(context): multiple").map { Int64(exactly: $0) ?? 0 }
        if let multiple, multiple < 1 || type != .integer { problem(node, context, "multiple: only for integer fields, and at least 1") }
        var allowed: [FieldValue]?
        if let valuesNode = entries["values"] {
            guard case .sequence(let items) = valuesNode else {
                problem(valuesNode, context, "values: expected a list")
                return nil
            }
            allowed = items.compactMap { literal($0, type: type, context: "\(context): values") }
        }
        if type == .enumeration && (allowed ?? []).isEmpty {
            problem(node, context, "an enum needs a non-empty list of values")
        }
        let aliases =
            (entries["aliases"].flatMap { node -> [String]? in
                guard case .sequence(let items) = node else { return nil }
                return items.compactMap(\.string)
            }) ?? []
        var defaultValue: FieldValue?
        if let defaultNode = entries["default"] {
            defaultValue = literal(defaultNode, type: type, context: "\(context): default")
            if let value = defaultValue {
                checkDefault(value, minimum: minimum, maximum: maximum, allowed: allowed, type: type, at: defaultNode, context: context)
            }
        }
        return FieldSpec(
            name: name, aliases: aliases, role: role, type: type, required: required, defaultValue: defaultValue,
            minimum: minimum, maximum: maximum, multiple: multiple, allowed: allowed)
    }

    /// A value written in the catalog, read as the field's type.
    private mutating func literal(_ node: Node, type: FieldType, context: String) -> FieldValue? {
        guard let text = node.string else {
            problem(node, context, "expected a single value")
            return nil
        }
        switch type {
        case .integer, .seed:
            if let value = Int64(text) { return .integer(value) }
        case .number:
            if let value = Double(text), value.isFinite { return .number(value) }
        case .boolean:
            if let value = node.bool { return .boolean(value) }
        case .string, .enumeration:
            return .string(text)
        case .image:
            break
        }
        problem(node, context, "'\(text)' is not a valid \(type.rawValue)")
        return nil
    }

    private mutating func checkDefault(
        _ value: FieldValue, minimum: Double?, maximum: Double?, allowed: [FieldValue]?, type: FieldType, at node: Node, context: String
    ) {
        if let number = value.asDouble, type != .seed {
            if let minimum, number < minimum { problem(node, context, "default \(value) is below min \(minimum)") }
            if let maximum, number > maximum { problem(node, context, "default \(value) is above max \(maximum)") }
        }
        if let allowed, !allowed.contains(where: { FieldCoercion.matches($0, value) }) {
            problem(node, context, "default '\(value)' is not one of its values")
        }
    }

    /// The roles a model cannot do without, each at most once.
    private mutating func checkRoles(_ fields: [FieldSpec], task: GenerationTask?, sizes: [ImageSize]?, at node: Node, slug: String) {
        var seen: Set<FieldRole> = []
        for field in fields where !seen.insert(field.role).inserted {
            problem(node, slug, "role '\(field.role.rawValue)' is given to more than one field")
        }
        for role in [FieldRole.prompt, .steps, .guidanceScale] where !seen.contains(role) {
            problem(node, slug, "no field has the role '\(role.rawValue)'")
        }
        if let stepsField = fields.first(where: { $0.role == .steps }), stepsField.defaultValue == nil {
            problem(node, slug, "\(stepsField.name): the steps field needs a default (prices are per default steps)")
        }
        if task == .imageToImage && !seen.contains(.image) {
            problem(node, slug, "an image-to-image model needs a field with the role 'image'")
        }
        if task == .textToImage {
            for role in [FieldRole.width, .height] where fields.first(where: { $0.role == role })?.defaultValue == nil && sizes == nil {
                problem(node, slug, "a text-to-image model needs a '\(role.rawValue)' field with a default, or a list of sizes")
            }
        }
    }

    // MARK: Helpers

    mutating func mapping(_ node: Node, _ context: String) -> Node.Mapping? {
        guard case .mapping(let mapping) = node else {
            problem(node, context, "expected a mapping of keys")
            return nil
        }
        return mapping
    }

    mutating func checkKeys(_ mapping: Node.Mapping, allowed: Set<String>, at node: Node, context: String) {
        for (key, _) in mapping where !allowed.contains(key.string ?? "") {
            problem(key, context, "unknown key '\(key.string ?? "?")' (expected one of \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    private mutating func enumValue<T: RawRepresentable & CaseIterable>(
        _ node: Node?, _ type: T.Type, at parent: Node, context: String
    ) -> T? where T.RawValue == String {
        guard let node else {
            problem(parent, context, "missing")
            return nil
        }
        guard let value = node.string.flatMap(T.init(rawValue:)) else {
            problem(node, context, "'\(node.string ?? "?")' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return value
    }

    private mutating func number(_ node: Node?, context: String) -> Double? {
        guard let node else { return nil }
        guard let value = node.string.flatMap(Double.init), value.isFinite else {
            problem(node, context, "expected a number")
            return nil
        }
        return value
    }

    mutating func problem(_ node: Node, _ context: String, _ message: String) {
        let place = context.isEmpty ? "" : "\(context): "
        problems.append("\(fileName):\(node.mark?.line ?? 0): \(place)\(message)")
    }
}
