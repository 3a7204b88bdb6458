public import GenerationCore

/// The model names a dialect's clients send, each standing for catalog models by task: OpenAI's
/// `dall-e-3`, an A1111 checkpoint title. One name may run as a text-to-image model and as an
/// image-to-image model (a checkpoint serves both of A1111's endpoints). A catalog slug is a name
/// too, for its own task.
public struct ModelNames: Sendable {
    /// Name → the slug it runs as, per task.
    public let names: [String: [GenerationTask: String]]
    /// The name a request that names none runs as.
    public let defaultName: String

    public init(names: [String: [GenerationTask: String]] = [:], defaultName: String = "") {
        self.names = names
        self.defaultName = defaultName
    }

    /// Why a name does not run a task.
    public enum Refusal: Error, Sendable, Equatable {
        /// Neither a name nor a catalog slug.
        case unknown
        /// A known name that runs only the other task.
        case otherTask(GenerationTask)
    }

    /// The catalog model `name` (or the default, for nil) runs as for `task`.
    public func model(_ name: String?, for task: GenerationTask, in catalog: ModelCatalog) -> Result<ModelSpec, Refusal> {
        let name = name ?? defaultName
        if let slugs = names[name] {
            guard let slug = slugs[task], let model = catalog[slug] else { return .failure(.otherTask(task.other)) }
            return .success(model)
        }
        guard let model = catalog[name] else { return .failure(.unknown) }
        return model.task == task ? .success(model) : .failure(.otherTask(model.task))
    }

    /// Every name a client may send and the slugs behind it, the catalog's own slugs included, sorted.
    public func listing(_ catalog: ModelCatalog) -> [(name: String, slugs: [String])] {
        let named = names.map { name, slugs in (name: name, slugs: slugs.values.sorted()) }
        let own = catalog.models.keys.filter { names[$0] == nil }.map { (name: $0, slugs: [$0]) }
        return (named + own).sorted { $0.name < $1.name }
    }
}

extension GenerationTask {
    var other: GenerationTask { self == .textToImage ? .imageToImage : .textToImage }
}

/// How OpenAI's Images API maps onto the catalog.
public struct OpenAIModels: Sendable {
    public let models: ModelNames
    /// OpenAI's sizes that a model does not have, each mapped to the size it runs at instead
    /// (`1792x1024` → `1344x768`, SDXL's nearest aspect ratio).
    public let sizes: [String: ImageSize]
    /// The prompt a variation (which has none) runs image-to-image with.
    public let variationPrompt: String

    public init(models: ModelNames = ModelNames(), sizes: [String: ImageSize] = [:], variationPrompt: String = "") {
        self.models = models
        self.sizes = sizes
        self.variationPrompt = variationPrompt
    }
}
