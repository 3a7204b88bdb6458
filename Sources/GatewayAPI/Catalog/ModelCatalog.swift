public import GenerationCore

/// Every model the gateway serves, loaded from `Config/models.yaml`.
public struct ModelCatalog: Sendable {
    public let models: [String: ModelSpec]
    /// The ModelsLab v3 endpoints (`img2img`, `text2img`): each a spec with v3's fields whose slug
    /// is the model it runs as.
    public let modelsLab: [String: ModelSpec]
    /// What ModelsLab v6's `model_id`s run as.
    public let modelsLabV6: ModelNames
    /// What OpenAI's model names and sizes run as.
    public let openAI: OpenAIModels
    /// What A1111's checkpoint titles run as.
    public let a1111: ModelNames

    public init(
        models: [ModelSpec], modelsLab: [String: ModelSpec] = [:], modelsLabV6: ModelNames = ModelNames(),
        openAI: OpenAIModels = OpenAIModels(), a1111: ModelNames = ModelNames()
    ) {
        self.models = Dictionary(models.map { ($0.slug, $0) }, uniquingKeysWith: { first, _ in first })
        self.modelsLab = modelsLab
        self.modelsLabV6 = modelsLabV6
        self.openAI = openAI
        self.a1111 = a1111
    }

    public subscript(slug: String) -> ModelSpec? { models[slug] }
}

/// One model: what it does, what it runs on, what it costs, and the fields a request may carry.
public struct ModelSpec: Sendable {
    public let slug: String
    public let task: GenerationTask
    public let family: ModelFamily
    public let price: PriceRule
    /// Allowed output sizes; nil when any size the fields allow is fine.
    public let sizes: [ImageSize]?
    /// For image-to-image: how the input's size becomes the output's, and the largest input.
    public let input: InputRule
    /// In catalog order, which is also the order problems are reported in.
    public let fields: [FieldSpec]
    /// The steps `price` is for: its own steps field's default; for a dialect's endpoint that runs
    /// as a model (ModelsLab v3's, whose default is 31), that model's, so that a step costs the same
    /// whichever API asks for it.
    public let pricedSteps: Int?

    public init(
        slug: String, task: GenerationTask, family: ModelFamily, price: PriceRule, sizes: [ImageSize]?, input: InputRule, fields: [FieldSpec],
        pricedSteps: Int? = nil
    ) {
        self.slug = slug
        self.task = task
        self.family = family
        self.price = price
        self.sizes = sizes
        self.input = input
        self.fields = fields
        self.pricedSteps = pricedSteps ?? fields.first { $0.role == .steps }?.defaultValue?.asDouble.flatMap { Int(exactly: $0) }
    }

    public func field(_ role: FieldRole) -> FieldSpec? { fields.first { $0.role == role } }
}

public struct ImageSize: Sendable, Equatable, CustomStringConvertible {
    public let width: Int
    public let height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// Parses `1024x768`.
    init?(_ text: String) {
        let parts = text.split(separator: "x")
        guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]), width > 0, height > 0 else { return nil }
        self.init(width: width, height: height)
    }

    public var description: String { "\(width)x\(height)" }
}

public struct InputRule: Sendable {
    /// The output keeps the input's size rounded down to this multiple (the latent grid).
    public let multiple: Int
    /// Larger inputs are refused.
    public let maxSize: ImageSize

    public static let standard = InputRule(multiple: 8, maxSize: ImageSize(width: 2048, height: 2048))
}

extension RequestPrice {
    /// The price of a request with `steps` steps under `spec`'s rule.
    public init(_ spec: ModelSpec, steps: Int) {
        self.init(perImage: spec.price.perImage, steps: steps, defaultSteps: spec.pricedSteps ?? steps)
    }
}
