public import GenerationCore

/// Builds the dialect-free request from validated fields and the loaded input image.
public enum GenerationRequestBuilder {
    /// - Parameters:
    ///   - samples: overrides the field (binary answers carry exactly one image).
    ///   - randomSeed: the seed used when the request asks for -1.
    public static func build(
        _ fields: ValidatedFields, image: InputImage?, samples: Int? = nil, randomSeed: UInt64
    ) -> GenerationRequest {
        let model = fields.model
        let requestedSeed = fields.integer(.seed) ?? -1
        let (width, height) = size(fields, image: image)
        return GenerationRequest(
            model: model.slug,
            task: model.task,
            family: model.family,
            prompt: fields.string(.prompt) ?? "",
            negativePrompt: fields.string(.negativePrompt).flatMap { $0.isEmpty ? nil : $0 },
            image: image,
            width: width,
            height: height,
            samples: samples ?? Int(fields.integer(.samples) ?? 1),
            steps: Int(fields.integer(.steps) ?? 0),
            guidanceScale: fields.number(.guidanceScale) ?? 0,
            strength: fields.number(.strength),
            seed: requestedSeed < 0 ? randomSeed : UInt64(requestedSeed),
            scheduler: fields.string(.scheduler),
            sampler: fields.string(.sampler),
            options: GenerationOptions(
                style: fields.string(.style),
                refiner: fields.boolean(.refiner),
                highNoiseFraction: fields.number(.highNoiseFraction),
                baseModel: fields.string(.baseModel)
            )
        )
    }

    /// The size fields when the model has them; otherwise the input's size rounded down to the
    /// model's multiple (the latent grid), never below one multiple.
    static func size(_ fields: ValidatedFields, image: InputImage?) -> (Int, Int) {
        if let width = fields.integer(.width), let height = fields.integer(.height) { return (Int(width), Int(height)) }
        guard let info = image?.info else { return (1024, 1024) }
        let multiple = fields.model.input.multiple
        return (max(multiple, info.width / multiple * multiple), max(multiple, info.height / multiple * multiple))
    }
}
