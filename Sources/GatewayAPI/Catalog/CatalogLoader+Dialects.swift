import GenerationCore
import Yams

/// The `openai`, `a1111` and `modelslab: v6` sections: the model names those dialects' clients send.
extension CatalogReader {
    mutating func modelsLabV6(_ node: Node, models: [ModelSpec]) -> ModelNames {
        guard let entries = mapping(node, "modelslab: v6") else { return ModelNames() }
        checkKeys(entries, allowed: ["default_model", "models"], at: node, context: "modelslab: v6")
        return modelNames(entries, defaultKey: "default_model", namesKey: "models", at: node, context: "modelslab: v6", models: models)
    }

    mutating func openAI(_ node: Node, models: [ModelSpec]) -> OpenAIModels {
        guard let entries = mapping(node, "openai") else { return OpenAIModels() }
        checkKeys(entries, allowed: ["default_model", "models", "sizes", "variation_prompt"], at: node, context: "openai")
        let names = modelNames(entries, defaultKey: "default_model", namesKey: "models", at: node, context: "openai", models: models)
        var sizes: [String: ImageSize] = [:]
        if let sizesNode = entries["sizes"], let pairs = mapping(sizesNode, "openai: sizes") {
            for (key, value) in pairs {
                guard let name = key.string, ImageSize(name) != nil, let size = value.string.flatMap(ImageSize.init) else {
                    problem(key, "openai: sizes", "expected a size mapped to a size, such as 1792x1024: 1344x768")
                    continue
                }
                sizes[name] = size
            }
        }
        let prompt = entries["variation_prompt"]?.string ?? ""
        if prompt.trimmingSpaces().isEmpty { problem(node, "openai", "variation_prompt: the prompt variations run with is required") }
        return OpenAIModels(models: names, sizes: sizes, variationPrompt: prompt)
    }

    mutating func a1111(_ node: Node, models: [ModelSpec]) -> ModelNames {
        guard let entries = mapping(node, "a1111") else { return ModelNames() }
        checkKeys(entries, allowed: ["default_checkpoint", "checkpoints"], at: node, context: "a1111")
        return modelNames(entries, defaultKey: "default_checkpoint", namesKey: "checkpoints", at: node, context: "a1111", models: models)
    }

    /// `names: {name: {text-to-image: slug, image-to-image: slug}}` and a default that is one of them
    /// or a slug.
    private mutating func modelNames(
        _ entries: Node.Mapping, defaultKey: String, namesKey: String, at node: Node, context: String, models: [ModelSpec]
    ) -> ModelNames {
        var names: [String: [GenerationTask: String]] = [:]
        if let namesNode = entries[namesKey], let pairs = mapping(namesNode, "\(context): \(namesKey)") {
            for (key, value) in pairs {
                guard let name = key.string, !name.isEmpty, let tasks = mapping(value, "\(context): \(namesKey): \(name)") else { continue }
                let place = "\(context): \(namesKey): \(name)"
                checkKeys(tasks, allowed: Set(GenerationTask.allCases.map(\.rawValue)), at: value, context: place)
                var slugs: [GenerationTask: String] = [:]
                for task in GenerationTask.allCases {
                    guard let slug = tasks[task.rawValue]?.string else { continue }
                    if let model = models.first(where: { $0.slug == slug }), model.task == task {
                        slugs[task] = slug
                    } else {
                        problem(value, place, "\(task.rawValue): expected a \(task.rawValue) model above, got '\(slug)'")
                    }
                }
                if slugs.isEmpty { problem(value, place, "names no model") }
                names[name] = slugs
            }
        }
        let defaultName = entries[defaultKey]?.string ?? ""
        if names[defaultName] == nil && !models.contains(where: { $0.slug == defaultName }) {
            problem(node, context, "\(defaultKey): expected one of the names in \(namesKey) or a model above, got '\(defaultName)'")
        }
        return ModelNames(names: names, defaultName: defaultName)
    }
}
